/* A rank killed mid-version is taken over by a new process (wb_topic_create_rank of the same rank, the same
 * boxes registered again: accepted, storage kept): its first begin continues the model's version (2, which the
 * other rank already published), it rewrites only some shards, and version 2 commits with the dead rank's
 * untouched shard reading its last committed bytes (version 1); then both ranks go on with version 3. The
 * rank's storage did not grow, and a rank whose publisher detached after publishing still counts. */
#include <sys/wait.h>

#include "sharded-versions.h"

#define TENSORS 2
#define ALL ((1u << TENSORS) - 1)

typedef struct taker {
  const fx_broker *broker;
  uint32_t *published_2;
} taker;

/* The new process of rank 1: version 2 writing t1 only, then version 3 writing everything, then detach. */
static int taker_main(void *arg) {
  const taker *k = arg;
  wb_client *c;
  wb_topic *t;
  uint64_t v = 0;
  CHILD_OK(vx_join(k->broker, "m", 1, 2, 2, TENSORS, &c, &t));
  CHILD_OK(vx_publish(t, 1, 1u << 1, &v));
  CHILD_CHECK(v == 2);
  fx_set_word(k->published_2, 1);
  CHILD_OK(vx_publish(t, 1, ALL, &v));
  CHILD_CHECK(v == 3);
  wb_detach(c);
  return 0;
}

static void test_a_new_process_takes_the_dead_rank_over(void **state) {
  const fx_broker *b = *state;
  uint32_t *words = fx_shared_alloc(2 * sizeof(uint32_t));
  vx_doomed_rank doomed = {b, "m", 1, 2, 2, TENSORS, 1, &words[0]};
  pid_t child = fx_spawn(vx_doomed_rank_main, &doomed);
  assert_true(child > 0);
  wb_client *c0, *rc;
  wb_topic *rank0, *reader;
  FX_OK(vx_join(b, "m", 0, 2, 2, TENSORS, &c0, &rank0));
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(vx_await_version(reader, 1));
  wb_rank_info before = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(reader, 1, &before));
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  assert_int_equal(fx_wait_word(&words[0], 1, VX_TIMEOUT_MS), 0);
  fx_kill9(child);

  taker k = {b, &words[1]};
  pid_t new_rank = fx_spawn(taker_main, &k);
  assert_true(new_rank > 0);
  assert_int_equal(fx_wait_word(&words[1], 1, VX_TIMEOUT_MS), 0);
  FX_OK(vx_await_version(reader, 2));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 2, VX_TIMEOUT_MS, &s));
  const uint64_t t0[2] = {2, 1}, t1[2] = {2, 2};  /* by rank: the new process left rank 1's t0 as it was */
  assert_int_equal(vx_check(s, 2, 1u << 0, t0), 0);
  assert_int_equal(vx_check(s, 2, 1u << 1, t1), 0);
  FX_OK(wb_snapshot_release(s));

  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  assert_int_equal(fx_wait_child(new_rank, VX_TIMEOUT_MS), 0);
  FX_OK(vx_await_version(reader, 3));
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  assert_int_equal(vx_check_all(s, 2, ALL, 3), 0);
  FX_OK(wb_snapshot_release(s));
  wb_rank_info after = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(reader, 1, &after));
  assert_int_equal(after.shards, before.shards);
  assert_int_equal(after.bytes, before.bytes);
  assert_int_equal(after.published, 3);
  wb_detach(rc);
  wb_detach(c0);
  fx_shared_free(words, 2 * sizeof(uint32_t));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_a_new_process_takes_the_dead_rank_over, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
