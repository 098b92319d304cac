/* wb_version* agree with the header's WB_VERSION*, and every dtype has its documented size and name. */
#include "fixture.h"

static void run_time_version_matches_header(void **state) {
  (void)state;
  assert_int_equal(wb_version(), WB_VERSION);
  assert_non_null(wb_version_string());
  assert_string_equal(wb_version_string(), WB_VERSION_STRING);
}

static void dtype_sizes_and_names(void **state) {
  (void)state;
  static const struct {
    int32_t dtype;
    uint32_t size;
    const char *name;
  } rows[] = {
      {WB_DTYPE_BOOL, 1, "bool"}, {WB_DTYPE_U8, 1, "u8"},         {WB_DTYPE_I8, 1, "i8"},
      {WB_DTYPE_I16, 2, "i16"},   {WB_DTYPE_I32, 4, "i32"},       {WB_DTYPE_I64, 8, "i64"},
      {WB_DTYPE_F16, 2, "f16"},   {WB_DTYPE_BF16, 2, "bf16"},     {WB_DTYPE_F32, 4, "f32"},
      {WB_DTYPE_F64, 8, "f64"},   {WB_DTYPE_F8E4M3, 1, "f8e4m3"}, {WB_DTYPE_F8E5M2, 1, "f8e5m2"},
      {WB_DTYPE_U16, 2, "u16"},   {WB_DTYPE_U32, 4, "u32"},       {WB_DTYPE_U64, 8, "u64"},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); ++i) {
    assert_int_equal(wb_dtype_size(rows[i].dtype), rows[i].size);
    assert_non_null(wb_dtype_name(rows[i].dtype));
    assert_string_equal(wb_dtype_name(rows[i].dtype), rows[i].name);
  }
  const int32_t unknown[] = {0, -1, 16, 1000, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); ++i) {
    assert_int_equal(wb_dtype_size(unknown[i]), 0);
    assert_null(wb_dtype_name(unknown[i]));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(run_time_version_matches_header),
      cmocka_unit_test(dtype_sizes_and_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
