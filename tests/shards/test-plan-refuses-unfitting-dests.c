/* wb_plan_create refuses each destination or part that does not fit, with its code and a message naming
 * dests[i], the part and its tensor: NULLs, struct sizes, part ranges, devices (WB_E_INVAL), unknown tensors
 * (WB_E_NOT_FOUND), another dtype (WB_E_DTYPE), boxes outside the tensor, parts that differ off concat_dim,
 * shapes that are not the parts' concatenation, bad concat_dim, ndim, pad or strides (WB_E_SHAPE), and buffers
 * too small for shape and strides (WB_E_SIZE). The refused destination is the second, after a good one. */
#include "fixture.h"

static uint32_t g_buffer[1024];

typedef struct plan_case {
  wb_slice_dest dests[2];
  wb_slice_part parts[3];
} plan_case;

/* dests[0]: rows [0:2) of "w" ([4, 8] u32); dests[1]: rows [2:4) then the whole of "b" ([2, 8] u32). */
static void good_case(plan_case *c) {
  for (int i = 0; i < 3; ++i) {
    wb_slice_part p = WB_SLICE_PART_INIT;
    p.ndim = 2;
    p.name = i < 2 ? "w" : "b";
    p.offset[0] = i == 1 ? 2 : 0;
    p.extent[0] = 2;
    p.extent[1] = 8;
    c->parts[i] = p;
  }
  for (int i = 0; i < 2; ++i) {
    wb_slice_dest d = WB_SLICE_DEST_INIT;
    d.first_part = (uint32_t)i;
    d.part_count = (uint32_t)(i + 1);
    d.ndim = 2;
    d.shape[0] = 2 * (i + 1);
    d.shape[1] = 8;
    d.dtype = WB_DTYPE_U32;
    d.dst = g_buffer;
    d.dst_bytes = sizeof(g_buffer);
    c->dests[i] = d;
  }
}

static void expect_refusal(wb_topic *t, plan_case *c, int want, const char *words) {
  wb_plan *plan = NULL;
  FX_EXPECT(wb_plan_create(t, c->dests, 2, c->parts, 3, &plan), want);
  if (strstr(wb_last_error(), words) == NULL) fail_msg("\"%s\" does not say \"%s\"", wb_last_error(), words);
  assert_null(plan);
  good_case(c);
}

static void open_model(wb_client *c, wb_topic **out) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c, "model", &o, out));
  wb_tensor_spec specs[2] = {WB_TENSOR_SPEC_INIT, WB_TENSOR_SPEC_INIT};
  const char *names[2] = {"w", "b"};
  for (int i = 0; i < 2; ++i) {
    specs[i].dtype = WB_DTYPE_U32;
    specs[i].name = names[i];
    specs[i].ndim = 2;
    specs[i].shape[0] = i == 0 ? 4 : 2;
    specs[i].shape[1] = 8;
  }
  FX_OK(wb_tensor_alloc(*out, specs, 2));
}

static void refusals(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "reader", &c));
  open_model(c, &t);
  plan_case k;
  good_case(&k);
  wb_plan *plan;
  FX_OK(wb_plan_create(t, k.dests, 2, k.parts, 3, &plan));
  wb_plan_destroy(plan);

  /* WB_E_INVAL */
  FX_EXPECT(wb_plan_create(NULL, k.dests, 2, k.parts, 3, &plan), WB_E_INVAL);
  FX_EXPECT(wb_plan_create(t, NULL, 2, k.parts, 3, &plan), WB_E_INVAL);
  FX_EXPECT(wb_plan_create(t, k.dests, 2, NULL, 3, &plan), WB_E_INVAL);
  FX_EXPECT(wb_plan_create(t, k.dests, 2, k.parts, 3, NULL), WB_E_INVAL);
  FX_EXPECT(wb_plan_create(t, k.dests, 0, k.parts, 3, &plan), WB_E_INVAL);
  k.dests[0].struct_size = 8;
  expect_refusal(t, &k, WB_E_INVAL, "wb_slice_dest.struct_size");
  k.parts[0].struct_size = 8;
  expect_refusal(t, &k, WB_E_INVAL, "wb_slice_part.struct_size");
  k.dests[1].first_part = 2;
  expect_refusal(t, &k, WB_E_INVAL, "dests[1]: parts [2, 2 + 2) are out of range: there are 3 parts");
  k.dests[1].part_count = 0;
  expect_refusal(t, &k, WB_E_INVAL, "dests[1]: parts");
  k.dests[1].device = -2;
  expect_refusal(t, &k, WB_E_INVAL, "dests[1].device is -2");
  k.dests[1].dst = NULL;
  expect_refusal(t, &k, WB_E_INVAL, "dests[1]: dst is NULL");
  k.parts[2].name = NULL;
  expect_refusal(t, &k, WB_E_INVAL, "dests[1] part 2: name is NULL");
  /* A GPU this process does not have (or no CUDA at all on this machine). */
  k.dests[1].device = 99;
  int rc = wb_plan_create(t, k.dests, 2, k.parts, 3, &plan);
  assert_true(rc == WB_E_INVAL || rc == WB_E_NO_CUDA);
  assert_non_null(strstr(wb_last_error(), "dests[1].device is 99"));
  good_case(&k);

  /* WB_E_NOT_FOUND */
  k.parts[2].name = "nope";
  expect_refusal(t, &k, WB_E_NOT_FOUND, "dests[1] part 2 ('nope'): topic 'model' has no such tensor");

  /* WB_E_DTYPE */
  k.dests[1].dtype = WB_DTYPE_F32;
  expect_refusal(t, &k, WB_E_DTYPE, "dests[1]: no conversion from u32 to f32");

  /* WB_E_SHAPE */
  k.parts[1].offset[0] = 3;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1] part 1 ('w'): region [3:5, 0:8] lies outside its shape [4, 8]");
  k.parts[2].extent[1] = 4;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1] part 2 ('b'): region [0:2, 0:4] is 4 wide in dimension 1");
  k.dests[1].shape[0] = 5;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1]: shape [5, 8] is not its parts' concatenation: they make 4");
  k.dests[1].concat_dim = 2;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1]: concat_dim 2");
  k.parts[1].ndim = 1;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1] part 1 ('w'): ndim 1, but the tensor has 2");
  k.dests[1].ndim = WB_MAX_DIMS + 1;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1]: ndim 9");
  k.parts[1].pad = -1;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1] part 1 ('w'): pad -1");
  k.dests[1].strides[0] = 8;
  k.dests[1].strides[1] = 2;
  expect_refusal(t, &k, WB_E_SHAPE, "dests[1]: strides [8, 2]");

  /* WB_E_SIZE: 4 x 8 u32 need 128 bytes; with a row stride of 16, 224. */
  k.dests[1].dst_bytes = 127;
  expect_refusal(t, &k, WB_E_SIZE, "dests[1]: shape [4, 8] spans 128 bytes, but dst_bytes is 127");
  k.dests[1].strides[0] = 16;
  k.dests[1].strides[1] = 1;
  k.dests[1].dst_bytes = 128;
  expect_refusal(t, &k, WB_E_SIZE, "spans 224 bytes");
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(refusals, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
