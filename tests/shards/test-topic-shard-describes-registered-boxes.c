/* wb_topic_shard: each rank's shards as registered, from any handle and before any version (torch.chunk rows
 * with a short last one, a replicated tensor, an empty shard, a scalar); and its refusals: NULL arguments, a
 * struct_size too small, a plain topic (WB_E_INVAL), an unknown tensor, a rank that holds no such shard
 * (WB_E_NOT_FOUND). */
#include <string.h>

#include "fixture.h"

#define RANKS 4

static void each_box_as_registered(void **state) {
  wb_client *c[RANKS];
  wb_topic *t[RANKS];
  for (uint32_t i = 0; i < RANKS; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 2, i, RANKS, &t[i]));
    int64_t offset = 3 * (int64_t)i; /* torch.chunk's 10 rows over 4 ranks: 3, 3, 3, 1 */
    wb_shard_spec rows = fx_shard_2d("emb", WB_DTYPE_BF16, 10, 8, offset, offset + 3 <= 10 ? 3 : 10 - offset, 0, 8);
    wb_shard_spec norm = fx_shard_1d("norm", WB_DTYPE_F32, 32, 0, 32);
    norm.flags = WB_SHARD_REPLICATED;
    wb_shard_spec tail = fx_shard_1d("tail", WB_DTYPE_U8, 2, i == 0 ? 0 : 2, i == 0 ? 2 : 0); /* empty on 1..3 */
    wb_shard_spec scalar = WB_SHARD_SPEC_INIT;
    scalar.name = "step";
    scalar.dtype = WB_DTYPE_I64;
    scalar.flags = WB_SHARD_REPLICATED;
    wb_shard_spec specs[4] = {rows, norm, tail, scalar};
    FX_OK(wb_shard_alloc(t[i], specs, 4));
  }
  wb_client *reader;
  wb_topic *r;
  FX_OK(fx_attach(*state, "reader", &reader));
  FX_OK(wb_topic_open(reader, "m", &r));
  /* Registered, not sealed, nothing published: the boxes are known already. */
  wb_shard_spec s = WB_SHARD_SPEC_INIT;
  FX_OK(wb_topic_shard(r, "emb", 3, 0, &s));
  assert_string_equal(s.name, "emb");
  assert_int_equal(s.dtype, WB_DTYPE_BF16);
  assert_int_equal(s.ndim, 2);
  assert_int_equal(s.flags, 0);
  assert_int_equal(s.logical_shape[0], 10);
  assert_int_equal(s.logical_shape[1], 8);
  assert_int_equal(s.offset[0], 9);
  assert_int_equal(s.offset[1], 0);
  assert_int_equal(s.extent[0], 1);
  assert_int_equal(s.extent[1], 8);
  assert_int_equal(s.offset[2], 0); /* dimensions past ndim are zero */
  FX_OK(wb_topic_shard(t[1], "emb", 1, 0, &s)); /* a rank's own handle */
  assert_int_equal(s.offset[0], 3);
  assert_int_equal(s.extent[0], 3);
  FX_OK(wb_topic_shard(r, "norm", 2, 0, &s));
  assert_int_equal(s.flags, WB_SHARD_REPLICATED);
  assert_int_equal(s.offset[0], 0);
  assert_int_equal(s.extent[0], 32);
  FX_OK(wb_topic_shard(r, "tail", 1, 0, &s));
  assert_int_equal(s.offset[0], 2);
  assert_int_equal(s.extent[0], 0);
  FX_OK(wb_topic_shard(r, "step", 0, 0, &s));
  assert_int_equal(s.ndim, 0);
  assert_int_equal(s.dtype, WB_DTYPE_I64);
  assert_int_equal(s.flags, WB_SHARD_REPLICATED);

  FX_EXPECT(wb_topic_shard(NULL, "emb", 0, 0, &s), WB_E_INVAL);
  FX_EXPECT(wb_topic_shard(r, NULL, 0, 0, &s), WB_E_INVAL);
  FX_EXPECT(wb_topic_shard(r, "emb", 0, 0, NULL), WB_E_INVAL);
  wb_shard_spec small = WB_SHARD_SPEC_INIT;
  small.struct_size = 8;
  FX_EXPECT(wb_topic_shard(r, "emb", 0, 0, &small), WB_E_INVAL);
  fx_expect_message("wb_shard_spec.struct_size is 8", NULL);
  FX_EXPECT(wb_topic_shard(r, "missing", 0, 0, &s), WB_E_NOT_FOUND);
  FX_EXPECT(wb_topic_shard(r, "emb", 0, 1, &s), WB_E_NOT_FOUND);
  fx_expect_message("rank 0 holds no shard 1 of 'emb'", NULL);
  FX_EXPECT(wb_topic_shard(r, "emb", RANKS, 0, &s), WB_E_NOT_FOUND);
  FX_OK(wb_detach(reader));
  for (uint32_t i = 0; i < RANKS; ++i) FX_OK(wb_detach(c[i]));
}

static void a_plain_topic_has_no_shards(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "pub", &c));
  FX_OK(fx_create_topic(c, "plain", 2, 1, 4, &t));
  wb_shard_spec s = WB_SHARD_SPEC_INIT;
  FX_EXPECT(wb_topic_shard(t, "t0", 0, 0, &s), WB_E_INVAL);
  fx_expect_message("topic 'plain' is not sharded", NULL);
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(each_box_as_registered, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_plain_topic_has_no_shards, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
