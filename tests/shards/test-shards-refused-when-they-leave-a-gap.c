/* The seal that would complete the layout checks that the shards cover every logical tensor: a gap is
 * WB_E_LAYOUT naming the model, the tensor, the uncovered region and the shards there are, and the sealing rank
 * stays unsealed (the others stay sealed); once it registers the missing part its seal completes the layout. */
#include "fixture.h"

static void a_gap_refuses_the_last_seal_until_it_is_filled(void **state) {
  wb_client *c[2];
  wb_topic *t[2];
  for (uint32_t i = 0; i < 2; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 2, i, 2, &t[i]));
  }
  wb_shard_spec head0 = fx_shard_2d("lm_head.weight", WB_DTYPE_BF16, 1000, 64, 0, 400, 0, 64);
  wb_shard_spec head1 = fx_shard_2d("lm_head.weight", WB_DTYPE_BF16, 1000, 64, 400, 380, 0, 64);
  wb_shard_spec bias0 = fx_shard_1d("bias", WB_DTYPE_F32, 10, 0, 10);
  FX_OK(wb_shard_alloc(t[0], &head0, 1));
  FX_OK(wb_shard_alloc(t[0], &bias0, 1));
  FX_OK(wb_shard_alloc(t[1], &head1, 1));
  FX_OK(wb_topic_seal_rank(t[0], 5000)); /* not the last: no check yet */
  FX_EXPECT(wb_topic_seal_rank(t[1], 5000), WB_E_LAYOUT);
  fx_expect_message("model 'm'", "tensor 'lm_head.weight'", "region [780:1000, 0:64] is covered by no rank",
                    "rank 0 [0:400, 0:64]", "rank 1 [400:780, 0:64]", NULL);
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(t[0], 1, &ri));
  assert_int_equal(ri.sealed, 0);
  FX_OK(wb_topic_rank_info(t[0], 0, &ri));
  assert_int_equal(ri.sealed, 1);
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(t[0], &info));
  assert_int_equal(info.layout_complete, 0);

  wb_shard_spec tail = fx_shard_2d("lm_head.weight", WB_DTYPE_BF16, 1000, 64, 780, 220, 0, 64);
  FX_OK(wb_shard_alloc(t[1], &tail, 1));
  FX_OK(wb_topic_seal_rank(t[1], 5000));
  FX_OK(wb_topic_get_info(t[0], &info));
  assert_int_equal(info.layout_complete, 1);
  FX_OK(wb_topic_rank_info(t[0], 1, &ri));
  assert_int_equal(ri.sealed, 1);
  assert_int_equal(ri.shards, 2);
  for (int i = 0; i < 2; ++i) FX_OK(wb_detach(c[i]));
}

static void a_gap_in_the_middle_of_many_shards_is_named(void **state) {
  enum { RANKS = 12 };
  wb_client *c[RANKS];
  wb_topic *t[RANKS];
  for (uint32_t i = 0; i < RANKS; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 1, i, RANKS, &t[i]));
    if (i == 5) continue; /* rank 5 holds nothing of it */
    wb_shard_spec s = fx_shard_2d("w", WB_DTYPE_U8, 8, 12 * 4, 0, 8, 4 * i, 4);
    FX_OK(wb_shard_alloc(t[i], &s, 1));
  }
  for (uint32_t i = 0; i + 1 < RANKS; ++i) FX_OK(wb_topic_seal_rank(t[i], 5000));
  FX_EXPECT(wb_topic_seal_rank(t[RANKS - 1], 5000), WB_E_LAYOUT);
  fx_expect_message("tensor 'w' region [0:8, 20:24] is covered by no rank", "rank 0 [0:8, 0:4]", ", ...)", NULL);
  for (uint32_t i = 0; i < RANKS; ++i) FX_OK(wb_detach(c[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_gap_refuses_the_last_seal_until_it_is_filled, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_gap_in_the_middle_of_many_shards_is_named, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
