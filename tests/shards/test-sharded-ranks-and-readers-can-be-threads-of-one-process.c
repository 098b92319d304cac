/* Three publishing ranks and two reading ranks of one sharded model as threads of one process, each with a
 * client of its own: every reader copies its vLLM tensor-parallel slices with a plan and checks every element of
 * every version it leases. Processes hide their shared-memory accesses from each other's ThreadSanitizer;
 * threads of one process do not, so that the TSan build checks the ranks' publishes, the broker's commit and the
 * readers' leases and plans here (test-reshard-stress runs the same model as processes, with kills). */
#include <pthread.h>

#include "fixture.h"
#include "reshard-model.h"

#define RANKS 3
#define READERS 2
#define VERSIONS 100

typedef struct thread_args {
  const fx_broker *broker;
  uint32_t rank;
  int rc;
  char why[256];
} thread_args;

static void *rank_thread(void *arg) {
  thread_args *a = arg;
  wb_client *c = NULL;
  wb_topic *t = NULL;
  wb_rank_options opts = WB_RANK_OPTIONS_INIT;
  opts.rank = a->rank;
  opts.ranks = RANKS;
  if ((a->rc = fx_attach(a->broker, "rank", &c)) == WB_OK &&
      (a->rc = wb_topic_create_rank(c, "model", &opts, &t)) == WB_OK &&
      (a->rc = rm_publish_rank(t, a->rank, RANKS, VERSIONS)) == WB_OK) {
    a->rc = wb_topic_close(t);
  }
  if (a->rc != WB_OK) snprintf(a->why, sizeof(a->why), "rank %u: %s", a->rank, wb_last_error());
  if (c != NULL) wb_detach(c);
  return NULL;
}

static int read_versions(thread_args *a, wb_topic *t, rm_dests *s) {
  wb_plan *plan = NULL;
  int64_t deadline = fx_now_ms() + 20000;
  int rc;
  while ((rc = wb_plan_create(t, s->dests, s->count, s->parts, s->part_count, &plan)) == WB_E_STATE &&
         fx_now_ms() < deadline) {
    fx_sleep_ms(1);
  }
  if (rc != WB_OK) return rc;
  uint64_t seen = 0;
  while (rc == WB_OK && seen < VERSIONS) {
    uint64_t latest, v = seen;
    wb_snapshot *snap;
    if ((rc = wb_topic_wait(t, seen, 20000, &latest)) != WB_OK ||
        (rc = wb_snapshot_acquire(t, 0, 20000, &snap)) != WB_OK) {
      break;
    }
    if ((rc = wb_snapshot_version(snap, &v)) == WB_OK && (rc = wb_plan_run(plan, snap, NULL)) == WB_OK) {
      for (uint32_t d = 0; d < s->count && rc == WB_OK; ++d) {
        int64_t bad = rm_check_dest(s, d, v);
        if (bad >= 0) {
          snprintf(a->why, sizeof(a->why), "reader %u: version %llu dests[%u] element %lld is wrong", a->rank,
                   (unsigned long long)v, d, (long long)bad);
          rc = WB_E_STATE;
        }
      }
    }
    wb_snapshot_release(snap);
    seen = v;
  }
  wb_plan_destroy(plan);
  return rc;
}

static void *reader_thread(void *arg) {
  thread_args *a = arg;
  wb_client *c = NULL;
  wb_topic *t = NULL;
  rm_dests s;
  int64_t deadline = fx_now_ms() + 20000;
  if ((a->rc = fx_attach(a->broker, "reader", &c)) == WB_OK) {
    while ((a->rc = wb_topic_open(c, "model", &t)) == WB_E_NOT_FOUND && fx_now_ms() < deadline) fx_sleep_ms(1);
  }
  if (a->rc == WB_OK && (a->rc = rm_tp_layout(a->rank, READERS, &s)) == WB_OK) {
    a->rc = read_versions(a, t, &s);
    rm_free_dests(&s);
  }
  if (a->rc != WB_OK && a->why[0] == '\0') snprintf(a->why, sizeof(a->why), "reader %u: %s", a->rank, wb_last_error());
  if (t != NULL) wb_topic_close(t);
  if (c != NULL) wb_detach(c);
  return NULL;
}

static void ranks_and_readers_as_threads(void **state) {
  const fx_broker *b = *state;
  pthread_t threads[RANKS + READERS];
  thread_args args[RANKS + READERS];
  memset(args, 0, sizeof(args));
  for (uint32_t i = 0; i < RANKS + READERS; ++i) {
    args[i].broker = b;
    args[i].rank = i < RANKS ? i : i - RANKS;
    assert_int_equal(pthread_create(&threads[i], NULL, i < RANKS ? rank_thread : reader_thread, &args[i]), 0);
  }
  for (uint32_t i = 0; i < RANKS + READERS; ++i) assert_int_equal(pthread_join(threads[i], NULL), 0);
  for (uint32_t i = 0; i < RANKS + READERS; ++i) {
    if (args[i].rc != WB_OK) fail_msg("%s (%s)", args[i].why, wb_strerror(args[i].rc));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ranks_and_readers_as_threads, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
