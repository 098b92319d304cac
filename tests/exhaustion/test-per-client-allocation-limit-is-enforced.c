/* --max-allocations-per-client: every wb_tensor_alloc call makes one allocation; past the limit the call is
 * refused with WB_E_NOSPC naming the flag and creates no tensor, and other clients keep their own budget. */
#include "fixture.h"

static fx_broker_opts two_per_client = {.max_allocations_per_client = 2};

static wb_tensor_spec u8_spec(const char *name) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_U8;
  s.ndim = 1;
  s.shape[0] = 16;
  return s;
}

static void a_third_allocation_is_refused(void **state) {
  wb_client *a, *b;
  wb_topic *t, *other;
  FX_OK(fx_attach(*state, "a", &a));
  FX_OK(fx_create_topic(a, "m", 2, 0, 0, &t));
  wb_tensor_spec x = u8_spec("x"), y = u8_spec("y"), z = u8_spec("z");
  FX_OK(wb_tensor_alloc(t, &x, 1));
  FX_OK(wb_tensor_alloc(t, &y, 1));
  FX_EXPECT(wb_tensor_alloc(t, &z, 1), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "--max-allocations-per-client"));
  uint32_t n = 0;
  FX_OK(wb_topic_tensor_count(t, &n));
  assert_int_equal(n, 2);
  FX_OK(fx_attach(*state, "b", &b));
  FX_OK(fx_create_topic(b, "other", 2, 2, 4, &other));
  FX_OK(wb_detach(b));
  FX_OK(wb_detach(a));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(a_third_allocation_is_refused, fx_setup, fx_teardown,
                                               &two_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
