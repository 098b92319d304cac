/* The last rank to publish a version commits it in its own publish call, so that with the broker dead the ranks'
 * versions still commit and readers see them at once. A last rank killed after its published store but before
 * its commit (the crash seam rank-after-published) leaves the version complete and uncommitted while no broker
 * runs: a successor commits it when it adopts the segment (whole on every shard), and the ranks go on with the
 * next version through the successor, the dead rank taken over. */
#include <signal.h>
#include <stdlib.h>

#include "sharded-versions.h"

#define RANKS 2
#define TENSORS 2
#define ALL ((1u << TENSORS) - 1)

typedef struct doomed_last_rank {
  const fx_broker *broker;
  uint32_t *words; /* fx_shared_alloc: [0] the version the child has begun and written, [1] the one it may publish */
} doomed_last_rank;

/* Rank 1: publishes version 1, then begins and writes versions 2 and 3, each published once the parent says so;
 * killed at its third publish (version 3) right after its published store. */
static int doomed_last_rank_main(void *arg) {
  const doomed_last_rank *d = arg;
  wb_client *c;
  wb_topic *t;
  setenv("WB_TEST_CRASH_AT", "rank-after-published:3", 1); /* read when the client attaches */
  CHILD_OK(vx_join(d->broker, "m", 1, RANKS, 2, TENSORS, &c, &t));
  CHILD_OK(wb_topic_seal_rank(t, VX_TIMEOUT_MS));
  CHILD_OK(vx_publish(t, 1, ALL, NULL));
  for (uint32_t v = 2; v <= 3; ++v) {
    wb_update *u;
    CHILD_OK(wb_update_begin(t, VX_TIMEOUT_MS, &u));
    CHILD_OK(vx_write(u, 1, ALL, v));
    fx_set_word(&d->words[0], v);
    CHILD_CHECK(fx_wait_word(&d->words[1], v, 30000) == 0);
    CHILD_OK(wb_update_publish(u, NULL, 0, NULL));
  }
  return 1; /* not reached: killed at the seam */
}

static void expect_latest(wb_topic *reader, uint64_t want) {
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(reader, &latest));
  assert_int_equal(latest, want);
}

static void expect_whole(wb_topic *reader, uint64_t v) {
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  assert_int_equal(vx_check_all(s, RANKS, ALL, v), 0);
  FX_OK(wb_snapshot_release(s));
}

/* Rank 0 begins and writes version v while the broker runs, both ranks publish it after the broker was killed. */
static void publish_without_broker(fx_broker *b, doomed_last_rank *d, wb_topic *rank0, uint64_t v) {
  wb_update *u;
  FX_OK(wb_update_begin(rank0, VX_TIMEOUT_MS, &u));
  FX_OK(vx_write(u, 0, ALL, v));
  assert_int_equal(fx_wait_word(&d->words[0], (uint32_t)v, 10000), 0);
  fx_broker_kill9(b);
  uint64_t published = 0;
  FX_OK(wb_update_publish(u, NULL, 0, &published));
  assert_int_equal(published, v);
  fx_set_word(&d->words[1], (uint32_t)v);
}

static void test_the_last_rank_commits_and_a_successor_commits_what_a_dead_one_left(void **state) {
  fx_broker *b = *state;
  doomed_last_rank d = {b, fx_shared_alloc(2 * sizeof(uint32_t))};
  wb_client *c0, *rc;
  wb_topic *rank0, *reader;
  FX_OK(vx_join(b, "m", 0, RANKS, 2, TENSORS, &c0, &rank0));
  pid_t child = fx_spawn(doomed_last_rank_main, &d);
  FX_OK(wb_topic_seal_rank(rank0, VX_TIMEOUT_MS));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  FX_OK(vx_await_version(reader, 1));

  publish_without_broker(b, &d, rank0, 2); /* the child's publish commits it: no broker needed */
  FX_OK(vx_await_version(reader, 2));
  assert_int_equal(fx_broker_restart(b), 0);
  expect_whole(reader, 2);

  publish_without_broker(b, &d, rank0, 3); /* the child dies after its published store */
  assert_int_equal(fx_wait_child(child, 10000), 128 + SIGKILL);
  expect_latest(reader, 2); /* complete, not committed: no broker, and the last rank died first */
  assert_int_equal(fx_broker_restart(b), 0);
  FX_OK(vx_await_version(reader, 3)); /* the successor committed it when it adopted the segment */
  expect_whole(reader, 3);

  wb_client *c1;
  wb_topic *rank1;
  uint64_t v = 0;
  FX_OK(vx_await_rank_released(reader, 1));
  FX_OK(vx_join(b, "m", 1, RANKS, 2, TENSORS, &c1, &rank1)); /* takes the dead rank over */
  FX_OK(vx_publish(rank1, 1, ALL, &v));
  assert_int_equal(v, 4);
  FX_OK(vx_publish(rank0, 0, ALL, &v));
  expect_latest(reader, 4); /* the last rank's publish returned: committed */
  expect_whole(reader, 4);
  fx_shared_free(d.words, 2 * sizeof(uint32_t));
  wb_detach(rc);
  wb_detach(c1);
  wb_detach(c0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_the_last_rank_commits_and_a_successor_commits_what_a_dead_one_left,
                                      fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
