/* --max-tensors-per-client: tensors and views a client adds count against its limit; a request over it is
 * refused whole with WB_E_NOSPC naming the flag, and re-declaring existing tensors costs nothing. */
#include "fixture.h"

static fx_broker_opts three_per_client = {.max_tensors_per_client = 3};

static wb_tensor_spec u8_spec(const char *name) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_U8;
  s.ndim = 1;
  s.shape[0] = 16;
  return s;
}

static wb_view_spec view_of_a(const char *name) {
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  v.name = name;
  v.parent = "a";
  v.dtype = WB_DTYPE_U8;
  v.ndim = 1;
  v.shape[0] = 4;
  v.strides[0] = 1;
  return v;
}

static uint32_t tensor_count(wb_topic *t) {
  uint32_t n = UINT32_MAX;
  FX_OK(wb_topic_tensor_count(t, &n));
  return n;
}

static void tensors_and_views_over_the_limit_are_refused(void **state) {
  wb_client *pc, *rc;
  wb_topic *t, *reader;
  FX_OK(fx_attach(*state, "publisher", &pc));
  FX_OK(fx_create_topic(pc, "m", 2, 0, 0, &t));
  wb_tensor_spec two[2] = {u8_spec("a"), u8_spec("b")};
  FX_OK(wb_tensor_alloc(t, two, 2));
  wb_tensor_spec more[2] = {u8_spec("c"), u8_spec("d")};
  FX_EXPECT(wb_tensor_alloc(t, more, 2), WB_E_NOSPC); /* all or nothing: "c" is not created */
  assert_non_null(strstr(wb_last_error(), "--max-tensors-per-client"));
  assert_int_equal(tensor_count(t), 2);
  FX_OK(wb_tensor_alloc(t, two, 2)); /* existing tensors: nothing new */
  wb_view_spec v = view_of_a("v1");
  FX_OK(wb_tensor_view(t, &v));
  v = view_of_a("v2");
  FX_EXPECT(wb_tensor_view(t, &v), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "--max-tensors-per-client"));
  assert_int_equal(tensor_count(t), 3);
  /* A reader's views count against its own limit. */
  FX_OK(fx_attach(*state, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(wb_tensor_view(reader, &v));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(tensors_and_views_over_the_limit_are_refused, fx_setup, fx_teardown,
                                               &three_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
