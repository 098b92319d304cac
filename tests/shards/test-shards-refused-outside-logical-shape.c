/* A shard's box must lie inside its logical shape (offsets >= 0, ends within): WB_E_SHAPE naming the tensor,
 * the rank, the region and the logical shape; bad specs (NULL, count 0, struct_size, dtype, ndim, flags) are
 * refused by the library before the broker is asked. */
#include "fixture.h"

static void a_box_outside_is_refused(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "rank", &c));
  FX_OK(fx_create_rank(c, "m", 2, 1, 2, &t));
  wb_shard_spec past = fx_shard_2d("w", WB_DTYPE_F32, 64, 32, 48, 32, 0, 32);
  FX_EXPECT(wb_shard_alloc(t, &past, 1), WB_E_SHAPE);
  fx_expect_message("tensor 'w' rank 1: region [48:80, 0:32] lies outside its logical shape [64, 32]", NULL);
  wb_shard_spec negative = fx_shard_2d("w", WB_DTYPE_F32, 64, 32, 0, 32, -1, 8);
  FX_EXPECT(wb_shard_alloc(t, &negative, 1), WB_E_SHAPE);
  fx_expect_message("tensor 'w' rank 1", "[0:32, -1:7]", "[64, 32]", NULL);
  wb_shard_spec huge = fx_shard_1d("v", WB_DTYPE_U8, 16, INT64_MAX, 1);
  FX_EXPECT(wb_shard_alloc(t, &huge, 1), WB_E_SHAPE);
  fx_expect_message("tensor 'v' rank 1", "lies outside its logical shape [16]", NULL);
  uint32_t count = 5;
  FX_OK(wb_topic_tensor_count(t, &count));
  assert_int_equal(count, 0);
  FX_OK(wb_detach(c));
}

static void bad_specs_are_refused(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "rank", &c));
  FX_OK(fx_create_rank(c, "m", 2, 0, 1, &t));
  wb_shard_spec s = fx_shard_1d("v", WB_DTYPE_U8, 16, 0, 16);
  FX_EXPECT(wb_shard_alloc(NULL, &s, 1), WB_E_INVAL);
  FX_EXPECT(wb_shard_alloc(t, NULL, 1), WB_E_INVAL);
  FX_EXPECT(wb_shard_alloc(t, &s, 0), WB_E_INVAL);
  wb_shard_spec small = s;
  small.struct_size = 8;
  FX_EXPECT(wb_shard_alloc(t, &small, 1), WB_E_INVAL);
  wb_shard_spec dtype = s;
  dtype.dtype = 999;
  FX_EXPECT(wb_shard_alloc(t, &dtype, 1), WB_E_DTYPE);
  wb_shard_spec ndim = s;
  ndim.ndim = WB_MAX_DIMS + 1;
  FX_EXPECT(wb_shard_alloc(t, &ndim, 1), WB_E_SHAPE);
  wb_shard_spec flags = s;
  flags.flags = 6;
  FX_EXPECT(wb_shard_alloc(t, &flags, 1), WB_E_INVAL);
  fx_expect_message("tensor 'v'", "flags", NULL);
  wb_shard_spec unnamed = s;
  unnamed.name = NULL;
  FX_EXPECT(wb_shard_alloc(t, &unnamed, 1), WB_E_INVAL);
  FX_OK(wb_shard_alloc(t, &s, 1));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_box_outside_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_specs_are_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
