/* What the refusals must not catch: every rank holding the same whole tensor, replicated (norms, biases of a
 * tensor-parallel model); a rank's empty shard (torch.chunk's last chunks: an extent 0), which overlaps nothing
 * and covers nothing; scalars; and a tensor whose logical shape is empty. The layout completes. */
#include "fixture.h"

#define RANKS 4

static void these_layouts_complete(void **state) {
  wb_client *c[RANKS];
  wb_topic *t[RANKS];
  for (uint32_t i = 0; i < RANKS; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 2, i, RANKS, &t[i]));
    wb_shard_spec norm = fx_shard_1d("norm", WB_DTYPE_F32, 32, 0, 32);
    norm.flags = WB_SHARD_REPLICATED;
    int64_t offset = 3 * (int64_t)i; /* torch.chunk's 10 rows over 4 ranks: 3, 3, 3, 1 */
    int64_t extent = offset + 3 <= 10 ? 3 : 10 - offset;
    wb_shard_spec rows = fx_shard_2d("emb", WB_DTYPE_BF16, 10, 8, offset, extent, 0, 8);
    wb_shard_spec tail = fx_shard_1d("tail", WB_DTYPE_U8, 2, i == 0 ? 0 : 2, i == 0 ? 2 : 0); /* empty on 1..3 */
    wb_shard_spec scalar = WB_SHARD_SPEC_INIT;
    scalar.name = "step";
    scalar.dtype = WB_DTYPE_I64;
    scalar.flags = WB_SHARD_REPLICATED;
    wb_shard_spec none = fx_shard_1d("nothing", WB_DTYPE_F32, 0, 0, 0);
    wb_shard_spec specs[5] = {norm, rows, tail, scalar, none};
    FX_OK(wb_shard_alloc(t[i], specs, 5));
  }
  for (uint32_t i = 0; i < RANKS; ++i) FX_OK(wb_topic_seal_rank(t[i], 5000));
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(t[0], &info));
  assert_int_equal(info.layout_complete, 1);
  assert_int_equal(info.tensor_count, 5);
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(t[0], 3, &ri));
  assert_int_equal(ri.shards, 5);
  wb_tensor_info ti = WB_TENSOR_INFO_INIT;
  FX_OK(wb_topic_tensor(t[0], 1, &ti));
  assert_string_equal(ti.name, "emb");
  assert_int_equal(ti.shape[0], 10);
  assert_int_equal(ti.dtype, WB_DTYPE_BF16);
  for (uint32_t i = 0; i < RANKS; ++i) FX_OK(wb_detach(c[i]));
}

static void an_empty_shard_does_not_cover(void **state) {
  wb_client *c[2];
  wb_topic *t[2];
  for (uint32_t i = 0; i < 2; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 1, i, 2, &t[i]));
  }
  wb_shard_spec full = fx_shard_1d("v", WB_DTYPE_U8, 8, 0, 4);
  wb_shard_spec empty = fx_shard_1d("v", WB_DTYPE_U8, 8, 4, 0);
  FX_OK(wb_shard_alloc(t[0], &full, 1));
  FX_OK(wb_shard_alloc(t[1], &empty, 1));
  FX_OK(wb_topic_seal_rank(t[0], 5000));
  FX_EXPECT(wb_topic_seal_rank(t[1], 5000), WB_E_LAYOUT);
  fx_expect_message("tensor 'v' region [4:8] is covered by no rank", "rank 1 [4:4]", NULL);
  for (int i = 0; i < 2; ++i) FX_OK(wb_detach(c[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(these_layouts_complete, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(an_empty_shard_does_not_cover, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
