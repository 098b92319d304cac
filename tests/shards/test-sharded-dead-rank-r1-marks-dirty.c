/* A rank killed (kill -9) while writing its shard of t0 in place (R = 1) leaves the sharded model dirty:
 * acquiring is WB_E_DIRTY naming the rank, wb_topic_rank_info counts its dirty shard and wb_topic_get_info says
 * dirty; a process that takes the rank over (same boxes) and publishes the version makes it whole again, the
 * other rank's part of that version (published before the death) included. An aborted rank update is dirty
 * the same way until the rank publishes again. */
#include "sharded-versions.h"

#define TENSORS 2
#define ALL ((1u << TENSORS) - 1)

static void expect_dirty(wb_topic *reader, uint32_t rank, uint32_t shards) {
  wb_snapshot *s;
  FX_EXPECT(wb_snapshot_acquire(reader, 0, 100, &s), WB_E_DIRTY);
  char want[64];
  snprintf(want, sizeof(want), "rank %u (%u shard", rank, shards);
  assert_non_null(strstr(wb_last_error(), want));
  wb_rank_info info = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(reader, rank, &info));
  assert_int_equal(info.dirty, shards);
  wb_topic_info topic = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(reader, &topic));
  assert_int_equal(topic.dirty, 1);
}

static void expect_whole(wb_topic *reader, uint64_t v) {
  FX_OK(vx_await_version(reader, v));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  assert_int_equal(vx_check_all(s, 2, ALL, v), 0);
  FX_OK(wb_snapshot_release(s));
  wb_topic_info topic = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(reader, &topic));
  assert_int_equal(topic.dirty, 0);
}

static void test_a_rank_killed_writing_in_place_leaves_the_model_dirty(void **state) {
  const fx_broker *b = *state;
  uint32_t *half_written = fx_shared_alloc(sizeof(uint32_t));
  vx_doomed_rank doomed = {b, "m", 1, 2, 1, TENSORS, 1, half_written};
  pid_t child = fx_spawn(vx_doomed_rank_main, &doomed);
  assert_true(child > 0);
  wb_client *c0, *c1, *rc;
  wb_topic *rank0, *rank1, *reader;
  FX_OK(vx_join(b, "m", 0, 2, 1, TENSORS, &c0, &rank0));
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(vx_await_version(reader, 1));
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  assert_int_equal(fx_wait_word(half_written, 1, VX_TIMEOUT_MS), 0);
  fx_kill9(child);
  FX_OK(vx_await_rank_released(reader, 1));
  expect_dirty(reader, 1, 1);

  FX_OK(vx_join(b, "m", 1, 2, 1, TENSORS, &c1, &rank1));  /* the same box: its storage is kept */
  uint64_t v = 0;
  FX_OK(vx_publish(rank1, 1, ALL, &v));
  assert_int_equal(v, 2);
  expect_whole(reader, 2);
  wb_rank_info info = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(reader, 1, &info));
  assert_int_equal(info.dirty, 0);
  assert_int_equal(info.pid, getpid());

  wb_update *u;
  wb_tensor_info ti = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_begin(rank1, VX_TIMEOUT_MS, &u));
  FX_OK(wb_update_tensor(u, "t1", &ti));
  FX_OK(wb_update_abort(u));
  expect_dirty(reader, 1, 1);
  FX_OK(vx_publish(rank0, 0, ALL, NULL));
  FX_OK(vx_publish(rank1, 1, ALL, NULL));
  expect_whole(reader, 3);

  wb_detach(rc);
  wb_detach(c1);
  wb_detach(c0);
  fx_shared_free(half_written, sizeof(uint32_t));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_a_rank_killed_writing_in_place_leaves_the_model_dirty, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
