/* A rank killed (kill -9) in the middle of writing version 2 of a sharded model with R = 2, after the other rank
 * published its part: the broker ends the dead rank's version (forgets its half-written replica, never the
 * other rank's), readers keep reading version 1 whole on every shard, their waits and the other rank's next
 * begin time out naming the dead rank, and wb_topic_rank_info shows it without publisher, writing nothing. */
#include "sharded-versions.h"

#define TENSORS 2
#define ALL ((1u << TENSORS) - 1)

static void test_a_rank_killed_mid_write_leaves_version_1_whole(void **state) {
  const fx_broker *b = *state;
  uint32_t *half_written = fx_shared_alloc(sizeof(uint32_t));
  vx_doomed_rank doomed = {b, "m", 1, 2, 2, TENSORS, 1, half_written};
  pid_t child = fx_spawn(vx_doomed_rank_main, &doomed);
  assert_true(child > 0);
  wb_client *c0, *rc;
  wb_topic *rank0, *reader;
  FX_OK(vx_join(b, "m", 0, 2, 2, TENSORS, &c0, &rank0));
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(vx_await_version(reader, 1));
  uint64_t v = 0;
  FX_OK(vx_publish(rank0, 0, ALL, &v));
  assert_int_equal(v, 2);
  assert_int_equal(fx_wait_word(half_written, 1, VX_TIMEOUT_MS), 0);
  fx_kill9(child);
  FX_OK(vx_await_rank_released(reader, 1));

  wb_rank_info info = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(reader, 1, &info));
  assert_int_equal(info.published, 1);
  assert_int_equal(info.writing, 0);
  FX_OK(wb_topic_rank_info(reader, 0, &info));
  assert_int_equal(info.published, 2);

  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, 1);
  assert_int_equal(vx_check_all(s, 2, ALL, 1), 0);
  FX_OK(wb_snapshot_release(s));

  uint64_t latest;
  FX_EXPECT(wb_topic_wait(reader, 1, 100, &latest), WB_E_TIMEOUT);
  assert_non_null(strstr(wb_last_error(), "model version 2 waits for rank(s) 1"));
  wb_update *u;
  FX_EXPECT(wb_update_begin(rank0, 100, &u), WB_E_TIMEOUT);
  assert_non_null(strstr(wb_last_error(), "version 2 waits for rank(s) 1 (no publisher, last published 1"));
  wb_detach(rc);
  wb_detach(c0);
  fx_shared_free(half_written, sizeof(uint32_t));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_a_rank_killed_mid_write_leaves_version_1_whole, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
