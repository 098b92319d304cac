/* Every rank's shards of a logical tensor agree on its dtype and logical shape: another dtype or logical shape
 * than the first rank registered is WB_E_LAYOUT naming the tensor, both ranks, both dtypes and both shapes, and
 * makes nothing; so are two specs of one name that disagree within one request. */
#include "fixture.h"

static void disagreement_is_refused(void **state) {
  wb_client *c[2];
  wb_topic *t[2];
  for (uint32_t i = 0; i < 2; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 2, i, 2, &t[i]));
  }
  wb_shard_spec first = fx_shard_2d("x", WB_DTYPE_F32, 64, 32, 0, 32, 0, 32);
  FX_OK(wb_shard_alloc(t[0], &first, 1));
  wb_shard_spec dtype = fx_shard_2d("x", WB_DTYPE_BF16, 64, 32, 32, 32, 0, 32);
  FX_EXPECT(wb_shard_alloc(t[1], &dtype, 1), WB_E_LAYOUT);
  fx_expect_message("tensor 'x': rank 1 registers bf16 [64, 32] but rank 0 registered f32 [64, 32]", NULL);
  wb_shard_spec shape = fx_shard_2d("x", WB_DTYPE_F32, 96, 32, 32, 32, 0, 32);
  FX_EXPECT(wb_shard_alloc(t[1], &shape, 1), WB_E_LAYOUT);
  fx_expect_message("tensor 'x': rank 1 registers f32 [96, 32] but rank 0 registered f32 [64, 32]", NULL);
  wb_shard_spec ndim = fx_shard_1d("x", WB_DTYPE_F32, 64, 32, 32);
  FX_EXPECT(wb_shard_alloc(t[1], &ndim, 1), WB_E_LAYOUT);
  fx_expect_message("tensor 'x'", "f32 [64]", "f32 [64, 32]", NULL);
  wb_shard_spec pair[2] = {fx_shard_1d("y", WB_DTYPE_F32, 8, 0, 4), fx_shard_1d("y", WB_DTYPE_F16, 8, 4, 4)};
  FX_EXPECT(wb_shard_alloc(t[1], pair, 2), WB_E_LAYOUT);
  fx_expect_message("tensor 'y': rank 1 registers f16 [8] and f32 [8] in one request", NULL);
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(t[0], 1, &ri));
  assert_int_equal(ri.shards, 0);
  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(t[0], &count));
  assert_int_equal(count, 1);
  wb_shard_spec good = fx_shard_2d("x", WB_DTYPE_F32, 64, 32, 32, 32, 0, 32);
  FX_OK(wb_shard_alloc(t[1], &good, 1));
  for (int i = 0; i < 2; ++i) FX_OK(wb_detach(c[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(disagreement_is_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
