/* N publishing ranks x M reading ranks of one sharded model (reshard-model.h), every element of every
 * destination checked against the reference sliced from the version the reader leased, while a supervisor
 * kills a random publishing rank with kill -9 at random moments (five times a run) and starts it again (the new process takes the
 * rank over and registers the same shards). Readers slice the model as a vLLM tensor-parallel server of M ranks
 * would; one more reader builds the fused QKV of each of 16 ranks (KV heads replicated). A reader never sees one
 * rank's version beside another's: every element of a destination is of the version it leased.
 *
 * Every N in {1, 2, 3, 4} x M in {1, 2, 4} with R = 2 (reads never fail) for VERSIONS versions, then R = 1
 * (N = 2, M = 2), where acquires may wait or find the model dirty between a kill and the restarted rank's
 * publish, and never read a wrong element. At the end no lease is held, nothing is dirty, and the model's
 * storage did not grow (a restarted rank keeps its shards' storage). */
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"
#include "reshard-model.h"

#define VERSIONS 1000
#define R1_VERSIONS 300
#define KILLS 5
#define TIMEOUT_MS 20000

typedef struct run {
  const fx_broker *broker;
  char topic[64];
  uint32_t ranks, readers, replicas, rank;
  uint64_t versions;
  bool qkv16; /* a reader of the 16 fused-QKV layouts instead of rank `rank`'s tensor-parallel layout */
} run;

static int rank_main(void *arg) {
  const run *p = arg;
  wb_client *c;
  CHILD_OK(fx_attach(p->broker, "rank", &c));
  wb_rank_options opts = WB_RANK_OPTIONS_INIT;
  opts.rank = p->rank;
  opts.ranks = p->ranks;
  opts.replicas = p->replicas;
  wb_topic *t = NULL;
  /* A restarted rank: the broker frees the killed one's rank once it sees its connection end. */
  int64_t deadline = fx_now_ms() + TIMEOUT_MS;
  int rc;
  while ((rc = wb_topic_create_rank(c, p->topic, &opts, &t)) == WB_E_BUSY && fx_now_ms() < deadline) fx_sleep_ms(2);
  CHILD_OK(rc);
  CHILD_OK(rm_publish_rank(t, p->rank, p->ranks, p->versions));
  CHILD_OK(wb_topic_close(t));
  CHILD_OK(wb_detach(c));
  return 0;
}

static int reader_main(void *arg) {
  const run *p = arg;
  wb_client *c;
  CHILD_OK(fx_attach(p->broker, "reader", &c));
  wb_topic *t = NULL;
  int64_t deadline = fx_now_ms() + TIMEOUT_MS;
  int rc;
  while ((rc = wb_topic_open(c, p->topic, &t)) == WB_E_NOT_FOUND && fx_now_ms() < deadline) fx_sleep_ms(2);
  CHILD_OK(rc);
  static rm_dests s;
  CHILD_OK(p->qkv16 ? rm_qkv_layouts(&s) : rm_tp_layout(p->rank, p->readers, &s));
  wb_plan *plan = NULL;
  /* The plan needs the complete layout: every rank registered and sealed. */
  while ((rc = wb_plan_create(t, s.dests, s.count, s.parts, s.part_count, &plan)) == WB_E_STATE &&
         fx_now_ms() < deadline) {
    fx_sleep_ms(2);
  }
  CHILD_OK(rc);
  uint64_t seen = 0;
  while (seen < p->versions) {
    uint64_t latest, v;
    CHILD_OK(wb_topic_wait(t, seen, TIMEOUT_MS, &latest));
    wb_snapshot *snap;
    rc = wb_snapshot_acquire(t, 0, 1000, &snap);
    if (p->replicas == 1 && (rc == WB_E_DIRTY || rc == WB_E_TIMEOUT)) { /* a killed rank's shards */
      fx_sleep_ms(1);
      continue;
    }
    CHILD_OK(rc);
    CHILD_OK(wb_snapshot_version(snap, &v));
    CHILD_CHECK(v > seen);
    CHILD_OK(wb_plan_run(plan, snap, NULL));
    for (uint32_t d = 0; d < s.count; ++d) {
      int64_t bad = rm_check_dest(&s, d, v);
      if (bad >= 0) {
        fprintf(stderr, "reader %u of %u%s: version %llu: dests[%u] element %lld is %u\n", p->rank, p->readers,
                p->qkv16 ? " (qkv x16)" : "", (unsigned long long)v, d, (long long)bad,
                ((const uint32_t *)s.dests[d].dst)[bad]);
        return 1;
      }
    }
    CHILD_OK(wb_snapshot_release(snap));
    seen = v;
  }
  wb_plan_destroy(plan);
  rm_free_dests(&s);
  CHILD_OK(wb_topic_close(t));
  CHILD_OK(wb_detach(c));
  return 0;
}

static void run_model(const fx_broker *b, uint32_t ranks, uint32_t readers, uint32_t replicas, uint64_t versions) {
  run base = {.broker = b, .ranks = ranks, .readers = readers, .replicas = replicas, .versions = versions};
  snprintf(base.topic, sizeof(base.topic), "model-n%u-m%u-r%u", ranks, readers, replicas);
  run rank_args[4], reader_args[5];
  pid_t rank_pids[4], reader_pids[5];
  for (uint32_t r = 0; r < ranks; ++r) {
    rank_args[r] = base;
    rank_args[r].rank = r;
    rank_pids[r] = fx_spawn(rank_main, &rank_args[r]);
  }
  for (uint32_t m = 0; m <= readers; ++m) {
    reader_args[m] = base;
    reader_args[m].rank = m;
    reader_args[m].qkv16 = m == readers;
    reader_pids[m] = fx_spawn(reader_main, &reader_args[m]);
  }
  wb_client *c;
  FX_OK(fx_attach(b, "supervisor", &c));
  wb_topic *t = NULL;
  int64_t deadline = fx_now_ms() + TIMEOUT_MS;
  int rc;
  while ((rc = wb_topic_open(c, base.topic, &t)) == WB_E_NOT_FOUND && fx_now_ms() < deadline) fx_sleep_ms(2);
  FX_OK(rc);
  uint64_t latest = 0;
  FX_OK(wb_topic_wait(t, 0, TIMEOUT_MS, &latest));
  wb_topic_info before = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(t, &before));
  /* Kill k at a random moment after version (k + 1) * versions / (KILLS + 1): inside a rank's begin, write or
   * publish, or while it waits for the others. */
  for (int kill = 0; kill < KILLS; ++kill) {
    uint64_t at = (uint64_t)(kill + 1) * versions / (KILLS + 1);
    while (latest < at) FX_OK(wb_topic_wait(t, latest, TIMEOUT_MS, &latest));
    usleep((useconds_t)(rand() % 2000));
    uint32_t r = (uint32_t)rand() % ranks;
    fx_kill9(rank_pids[r]);
    (void)fx_wait_child(rank_pids[r], TIMEOUT_MS);
    rank_pids[r] = fx_spawn(rank_main, &rank_args[r]);
  }
  for (uint32_t r = 0; r < ranks; ++r) {
    if (fx_wait_child(rank_pids[r], 60000) != 0) fail_msg("%s: rank %u failed (see its stderr)", base.topic, r);
  }
  for (uint32_t m = 0; m <= readers; ++m) {
    if (fx_wait_child(reader_pids[m], 60000) != 0) fail_msg("%s: reader %u failed (see its stderr)", base.topic, m);
  }
  FX_OK(wb_topic_latest(t, &latest));
  assert_int_equal(latest, versions);
  wb_topic_info after = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(t, &after));
  assert_int_equal(after.bytes, before.bytes); /* restarted ranks kept their shards' storage */
  assert_int_equal(after.dirty, 0);
  uint32_t leases = 1;
  FX_OK(wb_list_leases(c, NULL, 0, &leases));
  assert_int_equal(leases, 0);
  FX_OK(wb_topic_close(t));
  FX_OK(wb_detach(c));
}

static void every_n_by_m_with_two_replicas(void **state) {
  const fx_broker *b = *state;
  srand(19);
  const uint32_t ns[] = {1, 2, 3, 4}, ms[] = {1, 2, 4};
  for (size_t i = 0; i < 4; ++i) {
    for (size_t j = 0; j < 3; ++j) run_model(b, ns[i], ms[j], 2, VERSIONS);
  }
}

static void one_replica_two_by_two(void **state) {
  const fx_broker *b = *state;
  srand(1);
  run_model(b, 2, 2, 1, R1_VERSIONS);
}

int main(void) {
  static const fx_broker_opts opts = {.max_clients = 64, .leases_per_client = 8};
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(every_n_by_m_with_two_replicas, fx_setup, fx_teardown, (void *)&opts),
      cmocka_unit_test_prestate_setup_teardown(one_replica_two_by_two, fx_setup, fx_teardown, (void *)&opts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
