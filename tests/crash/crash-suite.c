/* The crash suite: `kill -9` of a publisher, a reader or the broker at random points, round after round, on
 * host tensors, with the invariants checked after each kill:
 *   - no torn read: readers running through the kill saw every tensor of a version hold that version's bytes;
 *   - no lost version: the topic's latest is at least the last version a publisher saw published, and its
 *     bytes are that version's (or, R = 1 only, the topic is dirty until a new publisher rewrites it);
 *   - no leak: once the dead are reclaimed, only the verifier is attached, it holds no lease, nobody else's
 *     lease blocks an R = 1 update, and the topics' storage did not grow;
 *   - the broker serves (after a broker kill: a new one adopts the segment, and the clients, the verifier
 *     included, resume with it and go on).
 *
 *   crash-suite [--rounds N] [--seed S]      (defaults: 1000 rounds, a seed from the clock, printed)
 *
 * Each child writes the step it is in to shared memory, so the summary counts where the kills landed:
 * mid-attach, mid-register (tensor allocation), mid-begin, mid-write, mid-publish, mid-acquire, mid-read,
 * mid-release. Exit status 0 when every round held.
 *
 * Before the rounds, the sharded cases: rank 1 of a two-rank model killed exactly before, then exactly after,
 * storing its published word for version 2 (the crash seams rank-before-published and rank-after-published),
 * with R = 1 and R = 2: the other rank and a reader see version 1 whole (R = 2) or the model dirty (R = 1)
 * before it, version 2 committed after it; then a process that takes the rank over (the same boxes) publishes
 * the next version, which commits whole on every shard. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "fixture.h"
#include "../shards/sharded-versions.h"

#define TENSORS 4
#define ELEMS 2048
#define READERS 2

enum step { ATTACH, REGISTER, BEGIN, WRITE, PUBLISH, ACQUIRE, READ, RELEASE, IDLE, STEPS };
static const char *const kStepNames[STEPS] = {"attach", "register", "begin", "write", "publish",
                                              "acquire", "read", "release", "between"};

/* Shared with the children. */
typedef struct board {
  uint32_t step[1 + READERS];   /* per child: the step it is in */
  uint64_t last_published[2];   /* per topic (R = 1, R = 2): the latest version a publisher saw published */
  uint32_t torn;                /* torn reads seen by any reader */
  uint32_t reads;
  uint32_t stop;                /* readers: finish the current read and exit */
} board;

typedef struct role {
  const fx_broker *broker;
  board *b;
  uint32_t topic;  /* 0: "r1" (R = 1), 1: "r2" (R = 2) */
  uint32_t index;  /* into board.step */
} role;

static const char *const kTopics[2] = {"r1", "r2"};

static void set_step(role *r, enum step s) { __atomic_store_n(&r->b->step[r->index], s, __ATOMIC_SEQ_CST); }

/* Publishes version after version until killed (or the broker dies: exit 0). */
static int publisher_main(void *arg) {
  role *r = arg;
  wb_client *c;
  wb_topic *t;
  set_step(r, ATTACH);
  if (fx_attach(r->broker, "crash-publisher", &c) != WB_OK) return 0;
  set_step(r, REGISTER);
  if (fx_take_over(c, kTopics[r->topic], r->topic + 1, TENSORS, ELEMS, &t) != WB_OK) return 0;
  for (;;) {
    wb_update *u;
    uint64_t v;
    set_step(r, BEGIN);
    if (wb_update_begin(t, 2000, &u) != WB_OK) return 0;
    wb_update_version(u, &v);
    set_step(r, WRITE);
    for (uint32_t i = 0; i < TENSORS; ++i) {
      char name[8];
      snprintf(name, sizeof(name), "t%u", i);
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      if (wb_update_tensor(u, name, &info) != WB_OK) return 0;
      fx_fill_u32(info.data, ELEMS, v, i);
    }
    set_step(r, PUBLISH);
    uint64_t published;
    if (wb_update_publish(u, &v, sizeof(v), &published) != WB_OK) return 0;
    __atomic_store_n(&r->b->last_published[r->topic], published, __ATOMIC_SEQ_CST);
    set_step(r, IDLE);
  }
}

/* Reads whole versions until told to stop (or killed, or the broker dies), counting torn ones. */
static int reader_main(void *arg) {
  role *r = arg;
  wb_client *c;
  wb_topic *t;
  set_step(r, ATTACH);
  if (fx_attach(r->broker, "crash-reader", &c) != WB_OK || wb_topic_open(c, kTopics[r->topic], &t) != WB_OK) return 0;
  while (!__atomic_load_n(&r->b->stop, __ATOMIC_SEQ_CST)) {
    wb_snapshot *s;
    set_step(r, ACQUIRE);
    int rc = wb_snapshot_acquire(t, 0, 200, &s);
    if (rc == WB_E_BROKER_GONE) return 0;
    if (rc != WB_OK) continue;  /* dirty, or nothing published yet */
    uint64_t v;
    wb_snapshot_version(s, &v);
    set_step(r, READ);
    for (uint32_t i = 0; i < TENSORS; ++i) {
      char name[8];
      snprintf(name, sizeof(name), "t%u", i);
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      if (wb_snapshot_tensor(s, name, &info) != WB_OK) continue;
      int64_t bad = info.version != 0 ? fx_check_u32(info.data, ELEMS, info.version, i) : -1;
      if (bad >= 0) {
        fprintf(stderr, "torn: topic %s version %llu tensor %u (written by %llu): element %lld is %u, not %u\n",
                kTopics[r->topic], (unsigned long long)v, i, (unsigned long long)info.version, (long long)bad,
                ((const uint32_t *)info.data)[bad], fx_pattern(info.version, i, (uint64_t)bad));
        __atomic_add_fetch(&r->b->torn, 1, __ATOMIC_SEQ_CST);
      }
    }
    __atomic_add_fetch(&r->b->reads, 1, __ATOMIC_SEQ_CST);
    set_step(r, RELEASE);
    wb_snapshot_release(s);
    set_step(r, IDLE);
  }
  wb_detach(c);
  return 0;
}

/* What the suite holds across rounds: the broker, the verifier's client and the topics' sizes. */
typedef struct suite {
  fx_broker broker;
  board *b;
  wb_client *verifier;
  uint64_t bytes[2];
  unsigned seed;
  uint32_t landed[3][STEPS];  /* kills by victim (publisher, reader, broker) and step */
  uint32_t failures;
} suite;

#define CHECK(s, cond, ...)                                   \
  do {                                                        \
    if (!(cond)) {                                            \
      fprintf(stderr, "round failed: " __VA_ARGS__);          \
      fprintf(stderr, " (wb_last_error: %s)\n", wb_last_error()); \
      (s)->failures++;                                        \
      return -1;                                              \
    }                                                         \
  } while (0)

/* Waits until the verifier is the only client left (the broker reclaimed the dead ones). */
static int await_alone(suite *s) {
  int64_t deadline = fx_now_ms() + 5000;
  for (;;) {
    wb_client_info info[8];
    for (int i = 0; i < 8; ++i) info[i] = (wb_client_info)WB_CLIENT_INFO_INIT;
    uint32_t count = 0;
    if (wb_list_clients(s->verifier, info, 8, &count) != WB_OK) return -1;
    if (count == 1) return info[0].leases == 0 ? 0 : -1;
    if (fx_now_ms() > deadline) return -1;
    fx_sleep_ms(2);
  }
}

/* The latest version of topic k is whole (or dirty, R = 1) and not older than what a publisher saw. Then a
 * takeover publishes a clean version, which also proves that no leaked lease blocks an update. */
static int verify_topic(suite *s, uint32_t k) {
  wb_topic *t;
  int rc = fx_take_over(s->verifier, kTopics[k], k + 1, TENSORS, ELEMS, &t);
  CHECK(s, rc == WB_OK, "topic %s: takeover: %s", kTopics[k], wb_strerror(rc));
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  wb_topic_get_info(t, &info);
  uint64_t seen = __atomic_load_n(&s->b->last_published[k], __ATOMIC_SEQ_CST);
  CHECK(s, info.latest >= seen, "topic %s: latest %llu is older than published %llu", kTopics[k],
        (unsigned long long)info.latest, (unsigned long long)seen);
  CHECK(s, info.bytes == s->bytes[k] || s->bytes[k] == 0, "topic %s: storage grew from %llu to %llu bytes",
        kTopics[k], (unsigned long long)s->bytes[k], (unsigned long long)info.bytes);
  s->bytes[k] = info.bytes;
  wb_snapshot *snap;
  rc = wb_snapshot_acquire(t, 0, 0, &snap);
  if (rc == WB_OK) {
    for (uint32_t i = 0; i < TENSORS && rc == WB_OK; ++i) {
      wb_tensor_info ti = WB_TENSOR_INFO_INIT;
      char name[8];
      snprintf(name, sizeof(name), "t%u", i);
      rc = wb_snapshot_tensor(snap, name, &ti);
      CHECK(s, rc == WB_OK && (ti.version == 0 || fx_check_u32(ti.data, ELEMS, ti.version, i) < 0),
            "topic %s: tensor %s of version %llu is torn", kTopics[k], name, (unsigned long long)info.latest);
    }
    wb_snapshot_release(snap);
  } else {
    CHECK(s, (rc == WB_E_DIRTY && k == 0) || (rc == WB_E_NOT_FOUND && info.latest == 0),
          "topic %s: acquire of the latest: %s", kTopics[k], wb_strerror(rc));
  }
  uint64_t v;
  rc = fx_publish(t, (1u << TENSORS) - 1, ELEMS, &v);
  CHECK(s, rc == WB_OK, "topic %s: publishing after the kill: %s", kTopics[k], wb_strerror(rc));
  __atomic_store_n(&s->b->last_published[k], v, __ATOMIC_SEQ_CST);
  wb_topic_close(t);
  return 0;
}

static pid_t spawn(suite *s, fx_child_fn fn, uint32_t topic, uint32_t index, role *r) {
  *r = (role){&s->broker, s->b, topic, index};
  __atomic_store_n(&s->b->step[index], IDLE, __ATOMIC_SEQ_CST);
  return fx_spawn(fn, r);
}

/* One round: a publisher and two readers of one topic run; after a random delay one victim is killed. */
static int round_once(suite *s) {
  uint32_t k = (uint32_t)rand_r(&s->seed) % 2;
  uint32_t victim = (uint32_t)rand_r(&s->seed) % 10;  /* 0-4 publisher, 5-7 reader, 8-9 broker */
  uint32_t kind = victim < 5 ? 0 : victim < 8 ? 1 : 2;
  role roles[1 + READERS];
  pid_t pids[1 + READERS];
  __atomic_store_n(&s->b->stop, 0, __ATOMIC_SEQ_CST);
  pids[0] = spawn(s, publisher_main, k, 0, &roles[0]);
  for (uint32_t i = 1; i <= READERS; ++i) pids[i] = spawn(s, reader_main, k, i, &roles[i]);
  fx_sleep_ms(rand_r(&s->seed) % 25);  /* 0 included: kills during attach and registration */
  if (kind == 2) {
    s->landed[2][__atomic_load_n(&s->b->step[0], __ATOMIC_SEQ_CST)]++;
    fx_broker_kill9(&s->broker);
    CHECK(s, fx_broker_restart(&s->broker) == 0, "the broker did not restart");
    fx_sleep_ms(rand_r(&s->seed) % 25);  /* the clients resume with it and go on */
  } else {
    uint32_t who = kind == 0 ? 0 : 1 + (uint32_t)rand_r(&s->seed) % READERS;
    s->landed[kind][__atomic_load_n(&s->b->step[who], __ATOMIC_SEQ_CST)]++;
    fx_kill9(pids[who]);
    pids[who] = 0;
  }
  __atomic_store_n(&s->b->stop, 1, __ATOMIC_SEQ_CST);
  if (pids[0] != 0) fx_kill9(pids[0]);  /* the publisher never stops on its own */
  for (uint32_t i = 1; i <= READERS; ++i) {
    if (pids[i] != 0) CHECK(s, fx_wait_child(pids[i], 10000) == 0, "a reader failed or hung");
  }
  CHECK(s, __atomic_load_n(&s->b->torn, __ATOMIC_SEQ_CST) == 0, "%u torn reads", s->b->torn);
  CHECK(s, await_alone(s) == 0, "the dead were not reclaimed, or the verifier holds a lease");
  return verify_topic(s, k);
}

/* ---- sharded models: a rank killed at its crash seams ---------------------------------------------------- */

typedef struct seam_rank {
  const fx_broker *broker;
  const char *model;
  uint32_t replicas;
  const char *seam; /* WB_TEST_CRASH_AT */
} seam_rank;

/* Rank 1 of the model, publishing until its seam kills it (in its second publish). */
static int seam_rank_main(void *arg) {
  const seam_rank *r = arg;
  wb_client *c;
  wb_topic *t;
  setenv("WB_TEST_CRASH_AT", r->seam, 1);  /* read when the client attaches */
  CHILD_OK(vx_join(r->broker, r->model, 1, 2, r->replicas, 2, &c, &t));
  CHILD_OK(wb_topic_seal_rank(t, VX_TIMEOUT_MS));
  for (;;) CHILD_OK(vx_publish(t, 1, 3u, NULL));
}

/* What a reader sees once the rank died at the seam: version `latest`, whole, or (R = 1, before its published
 * store) the model dirty. */
static int check_after_seam(suite *s, wb_topic *reader, const char *model, uint64_t latest, int dirty) {
  uint64_t v = 0;
  CHECK(s, wb_topic_latest(reader, &v) == WB_OK && v == latest, "%s: latest is %llu, not %llu", model,
        (unsigned long long)v, (unsigned long long)latest);
  wb_snapshot *snap;
  int rc = wb_snapshot_acquire(reader, 0, 0, &snap);
  if (dirty) {
    CHECK(s, rc == WB_E_DIRTY, "%s: acquire is %s, not WB_E_DIRTY", model, wb_strerror(rc));
    return 0;
  }
  CHECK(s, rc == WB_OK, "%s: acquire: %s", model, wb_strerror(rc));
  rc = vx_check_all(snap, 2, 3u, latest);
  wb_snapshot_release(snap);
  CHECK(s, rc == 0, "%s: version %llu is not whole", model, (unsigned long long)latest);
  return 0;
}

static int sharded_seam_case(suite *s, const char *seam, int after, uint32_t replicas) {
  char model[48], spec[48];
  snprintf(model, sizeof(model), "%s-r%u", seam, replicas);
  snprintf(spec, sizeof(spec), "%s:2", seam);
  seam_rank r = {&s->broker, model, replicas, spec};
  pid_t child = fx_spawn(seam_rank_main, &r);
  wb_client *c0, *c1;
  wb_topic *rank0, *rank1, *reader;
  CHECK(s, vx_join(&s->broker, model, 0, 2, replicas, 2, &c0, &rank0) == WB_OK, "%s: rank 0 joins", model);
  CHECK(s, vx_publish(rank0, 0, 3u, NULL) == WB_OK, "%s: rank 0 publishes version 1", model);
  CHECK(s, vx_publish(rank0, 0, 3u, NULL) == WB_OK, "%s: rank 0 publishes version 2", model);
  CHECK(s, fx_wait_child(child, 10000) == 128 + SIGKILL, "%s: rank 1 was not killed at its seam", model);
  CHECK(s, wb_topic_open(s->verifier, model, &reader) == WB_OK, "%s: open", model);
  CHECK(s, vx_await_rank_released(reader, 1) == WB_OK, "%s: the dead rank was not reclaimed", model);
  if (after) CHECK(s, vx_await_version(reader, 2) == WB_OK, "%s: version 2 was not committed", model);
  if (check_after_seam(s, reader, model, after ? 2 : 1, !after && replicas == 1) != 0) return -1;
  CHECK(s, vx_join(&s->broker, model, 1, 2, replicas, 2, &c1, &rank1) == WB_OK, "%s: take-over", model);
  uint64_t next = after ? 3 : 2, v = 0;
  CHECK(s, vx_publish(rank1, 1, 3u, &v) == WB_OK && v == next, "%s: the new rank 1 publishes", model);
  if (after) CHECK(s, vx_publish(rank0, 0, 3u, NULL) == WB_OK, "%s: rank 0 publishes version 3", model);
  CHECK(s, vx_await_version(reader, next) == WB_OK, "%s: version %llu was not committed", model,
        (unsigned long long)next);
  if (check_after_seam(s, reader, model, next, 0) != 0) return -1;
  wb_topic_close(reader);
  wb_detach(c1);
  wb_detach(c0);
  return 0;
}

static int sharded_seam_cases(suite *s) {
  for (uint32_t replicas = 1; replicas <= 2; ++replicas) {
    if (sharded_seam_case(s, "rank-before-published", 0, replicas) != 0) return -1;
    if (sharded_seam_case(s, "rank-after-published", 1, replicas) != 0) return -1;
  }
  printf("crash suite: sharded seams (rank killed before / after its published store, R = 1, 2) held\n");
  return 0;
}

static void print_summary(const suite *s, int rounds, int64_t ms) {
  static const char *const victims[3] = {"publisher", "reader", "broker"};
  printf("crash suite: %d kills in %.1f s (seed %u), %u reads checked, %u torn, %u failed rounds\n", rounds,
         (double)ms / 1000, s->seed, s->b->reads, s->b->torn, s->failures);
  printf("%-10s", "killed");
  for (int st = 0; st < STEPS; ++st) printf(" %8s", kStepNames[st]);
  printf("\n");
  for (int v = 0; v < 3; ++v) {
    printf("%-10s", victims[v]);
    for (int st = 0; st < STEPS; ++st) printf(" %8u", s->landed[v][st]);
    printf("\n");
  }
  printf("(for a broker kill: the step its publisher was in)\n");
}

int main(int argc, char **argv) {
  int rounds = 1000;
  suite s = {0};
  s.seed = (unsigned)fx_now_ms();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--seed") == 0) s.seed = (unsigned)strtoul(argv[i + 1], NULL, 10);
  }
  unsigned first_seed = s.seed;
  s.b = fx_shared_alloc(sizeof(board));
  if (fx_broker_start(&s.broker, NULL) != 0 || fx_attach(&s.broker, "verifier", &s.verifier) != WB_OK) {
    fprintf(stderr, "crash suite: cannot start a broker\n");
    return 2;
  }
  int64_t start = fx_now_ms();
  if (sharded_seam_cases(&s) != 0) fprintf(stderr, "crash suite: a sharded seam case failed\n");
  for (int r = 0; r < rounds && s.failures == 0; ++r) {
    if (round_once(&s) != 0) fprintf(stderr, "crash suite: round %d failed (rerun with --seed %u)\n", r, first_seed);
  }
  s.seed = first_seed;
  print_summary(&s, rounds, fx_now_ms() - start);
  wb_detach(s.verifier);
  if (fx_broker_stop(&s.broker) != 0) s.failures++;
  return s.failures == 0 ? 0 : 1;
}
