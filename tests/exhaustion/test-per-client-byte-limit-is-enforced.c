/* --max-bytes-per-client: the host shared memory a client's allocations take (every replica, 64-byte
 * aligned) counts against its limit; an allocation over it is refused with WB_E_NOSPC naming the flag. */
#include "fixture.h"

static fx_broker_opts four_kib_per_client = {.max_bytes_per_client = 4096};

static wb_tensor_spec u8_spec(const char *name, int64_t bytes) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_U8;
  s.ndim = 1;
  s.shape[0] = bytes;
  return s;
}

static void an_allocation_past_the_byte_limit_is_refused(void **state) {
  wb_client *a, *b;
  wb_topic *t, *other;
  FX_OK(fx_attach(*state, "a", &a));
  FX_OK(fx_create_topic(a, "m", 2, 0, 0, &t)); /* 2 replicas: each tensor takes twice its bytes */
  wb_tensor_spec x = u8_spec("x", 1024), y = u8_spec("y", 1024), z = u8_spec("z", 1);
  FX_OK(wb_tensor_alloc(t, &x, 1));
  FX_OK(wb_tensor_alloc(t, &y, 1)); /* exactly 4096 bytes now */
  FX_EXPECT(wb_tensor_alloc(t, &z, 1), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "--max-bytes-per-client"));
  uint32_t n = 0;
  FX_OK(wb_topic_tensor_count(t, &n));
  assert_int_equal(n, 2);
  FX_OK(fx_attach(*state, "b", &b));
  FX_OK(fx_create_topic(b, "other", 2, 1, 16, &other));
  FX_OK(wb_detach(b));
  FX_OK(wb_detach(a));
}

static void one_allocation_larger_than_the_limit_is_refused(void **state) {
  wb_client *a;
  wb_topic *t;
  FX_OK(fx_attach(*state, "a", &a));
  FX_OK(fx_create_topic(a, "m", 1, 0, 0, &t));
  wb_tensor_spec big = u8_spec("big", 4097);
  FX_EXPECT(wb_tensor_alloc(t, &big, 1), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "--max-bytes-per-client"));
  FX_OK(wb_detach(a));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(an_allocation_past_the_byte_limit_is_refused, fx_setup, fx_teardown,
                                               &four_kib_per_client),
      cmocka_unit_test_prestate_setup_teardown(one_allocation_larger_than_the_limit_is_refused, fx_setup,
                                               fx_teardown, &four_kib_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
