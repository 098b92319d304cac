/* Every refusal of a converting destination, in copy-into and in plans, with its code and a message naming the
 * target or destination and what is wrong: pairs that are not conversions (i32 -> f8e4m3, bf16 -> f16,
 * f16 -> bf16), FP8 without scales, scales for bf16 or for the tensor's own dtype, an unknown layout, a block
 * with one side 0, block scales of a 3-D destination, scale NULL or set without a layout, dst_bytes and
 * scale_bytes one byte short, a strided view, a strided plan destination, plan parts of two dtypes; and nothing
 * is written by a refused copy-into. Host memory here; GPU cases are in tests/gpu. */
#include "fixture.h"

static void create_topic(wb_client *c, wb_topic **out) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c, "model", &o, out));
  const struct {
    const char *name;
    int32_t dtype;
    uint32_t ndim;
    int64_t shape[3];
  } tensors[] = {
      {"w", WB_DTYPE_BF16, 2, {130, 257, 0}}, {"i", WB_DTYPE_I32, 2, {4, 4, 0}},
      {"f", WB_DTYPE_F32, 3, {2, 3, 4}},      {"h", WB_DTYPE_F16, 2, {4, 4, 0}},
  };
  wb_tensor_spec specs[4];
  for (int t = 0; t < 4; ++t) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.name = tensors[t].name;
    s.dtype = tensors[t].dtype;
    s.ndim = tensors[t].ndim;
    memcpy(s.shape, tensors[t].shape, sizeof(tensors[t].shape));
    specs[t] = s;
  }
  FX_OK(wb_tensor_alloc(*out, specs, 4));
  /* every other column of w's first row: a strided view */
  wb_view_spec view = WB_VIEW_SPEC_INIT;
  view.name = "w_view";
  view.parent = "w";
  view.dtype = WB_DTYPE_BF16;
  view.ndim = 1;
  view.shape[0] = 100;
  view.strides[0] = 2;
  FX_OK(wb_tensor_view(*out, &view));
}

static uint8_t g_dst[130 * 257 * 4];
static float g_scales[4096];

static wb_copy_target fp8_target(const char *name, uint32_t layout) {
  wb_copy_target t = WB_COPY_TARGET_INIT;
  t.name = name;
  t.dst = g_dst;
  t.dst_bytes = sizeof(g_dst);
  t.dtype = WB_DTYPE_F8E4M3;
  t.scale_layout = layout;
  t.scale = g_scales;
  t.scale_bytes = sizeof(g_scales);
  return t;
}

static void copy_into_refusals(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *topic;
  FX_OK(fx_attach(*state, "trainer", &pc));
  FX_OK(fx_attach(*state, "server", &rc));
  create_topic(pc, &pub);
  uint64_t v;
  wb_update *u;
  FX_OK(wb_update_begin(pub, 5000, &u));
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  FX_OK(wb_topic_open(rc, "model", &topic));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(topic, v, 1000, &s));
  memset(g_dst, 0x5A, sizeof(g_dst));

  wb_copy_target t = fp8_target("i", WB_SCALE_TENSOR);
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_DTYPE);
  fx_expect_message("targets[0] ('i')", "no conversion from i32 to f8e4m3", NULL);

  t = fp8_target("w", WB_SCALE_NONE);
  t.scale = NULL;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_DTYPE);
  fx_expect_message("'w'", "needs scales", NULL);

  t = fp8_target("w", WB_SCALE_TENSOR);
  t.dtype = WB_DTYPE_F16;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_DTYPE);
  fx_expect_message("no conversion from bf16 to f16", NULL);

  t = fp8_target("h", WB_SCALE_NONE);
  t.dtype = WB_DTYPE_BF16;
  t.scale = NULL;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_DTYPE);
  fx_expect_message("no conversion from f16 to bf16", NULL);

  t = fp8_target("f", WB_SCALE_TENSOR);
  t.dtype = WB_DTYPE_BF16;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_DTYPE);
  fx_expect_message("f32 to bf16 takes no scales", NULL);

  t = fp8_target("w", WB_SCALE_CHANNEL);
  t.dtype = 0;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_DTYPE);
  fx_expect_message("only FP8 destinations have", NULL);

  t = fp8_target("w", 7);
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_INVAL);
  fx_expect_message("scale_layout 7", NULL);

  t = fp8_target("w", WB_SCALE_BLOCK);
  t.block_rows = 64;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_INVAL);
  fx_expect_message("block 64 x 0", NULL);

  t = fp8_target("f", WB_SCALE_BLOCK);
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_SHAPE);
  fx_expect_message("('f')", "2-D destination", "[2, 3, 4]", NULL);

  t = fp8_target("w", WB_SCALE_TENSOR);
  t.scale = NULL;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_INVAL);
  fx_expect_message("needs scale, and it is NULL", NULL);

  t = fp8_target("f", WB_SCALE_NONE);
  t.dtype = WB_DTYPE_BF16;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_INVAL);
  fx_expect_message("scale is set, but scale_layout is WB_SCALE_NONE", NULL);

  t = fp8_target("w", WB_SCALE_BLOCK); /* 130 x 257 in 128 x 128 blocks: 2 x 3 scales */
  t.dst_bytes = 130 * 257 - 1;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_SIZE);
  fx_expect_message("33410 bytes", "dst_bytes is 33409", NULL);
  t.dst_bytes = 130 * 257;
  t.scale_bytes = 6 * 4 - 1;
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_SIZE);
  fx_expect_message("6 f32 scales (24 bytes)", "scale_bytes is 23", NULL);

  t = fp8_target("w_view", WB_SCALE_TENSOR);
  FX_EXPECT(wb_snapshot_copy_into(s, &t, 1, NULL), WB_E_SHAPE);
  fx_expect_message("('w_view')", "strided view", NULL);

  /* A refused target among good ones: nothing is written. */
  wb_copy_target two[2] = {fp8_target("w", WB_SCALE_TENSOR), fp8_target("i", WB_SCALE_TENSOR)};
  FX_EXPECT(wb_snapshot_copy_into(s, two, 2, NULL), WB_E_DTYPE);
  fx_expect_message("targets[1]", NULL);
  for (size_t i = 0; i < sizeof(g_dst); ++i) assert_int_equal(g_dst[i], 0x5A);

  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

static wb_slice_part whole(const char *name, int64_t rows, int64_t cols) {
  wb_slice_part p = WB_SLICE_PART_INIT;
  p.ndim = 2;
  p.name = name;
  p.extent[0] = rows;
  p.extent[1] = cols;
  return p;
}

static wb_slice_dest fp8_dest(int64_t rows, int64_t cols, uint32_t layout) {
  wb_slice_dest d = WB_SLICE_DEST_INIT;
  d.ndim = 2;
  d.shape[0] = rows;
  d.shape[1] = cols;
  d.dtype = WB_DTYPE_F8E4M3;
  d.scale_layout = layout;
  d.dst = g_dst;
  d.dst_bytes = sizeof(g_dst);
  d.scale = g_scales;
  d.scale_bytes = sizeof(g_scales);
  return d;
}

static void plan_refusals(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *topic;
  FX_OK(fx_attach(*state, "trainer", &pc));
  FX_OK(fx_attach(*state, "server", &rc));
  create_topic(pc, &pub);
  FX_OK(wb_topic_open(rc, "model", &topic));
  wb_plan *plan = NULL;

  wb_slice_part p = whole("i", 4, 4);
  wb_slice_dest d = fp8_dest(4, 4, WB_SCALE_TENSOR);
  FX_EXPECT(wb_plan_create(topic, &d, 1, &p, 1, &plan), WB_E_DTYPE);
  fx_expect_message("dests[0]", "no conversion from i32 to f8e4m3", NULL);

  p = whole("w", 130, 257);
  d = fp8_dest(130, 257, WB_SCALE_BLOCK);
  d.scale_bytes = 5 * 4;
  FX_EXPECT(wb_plan_create(topic, &d, 1, &p, 1, &plan), WB_E_SIZE);
  fx_expect_message("dests[0]", "6 f32 scales", "scale_bytes is 20", NULL);

  d = fp8_dest(130, 257, WB_SCALE_BLOCK);
  d.strides[0] = 300;
  d.strides[1] = 1;
  FX_EXPECT(wb_plan_create(topic, &d, 1, &p, 1, &plan), WB_E_SHAPE);
  fx_expect_message("dests[0]", "a converting destination is contiguous", NULL);

  d = fp8_dest(130, 257, WB_SCALE_NONE);
  d.scale = NULL;
  FX_EXPECT(wb_plan_create(topic, &d, 1, &p, 1, &plan), WB_E_DTYPE);
  fx_expect_message("needs scales", NULL);

  d = fp8_dest(130, 257, WB_SCALE_TENSOR);
  d.dst_bytes = 130 * 257 - 1;
  FX_EXPECT(wb_plan_create(topic, &d, 1, &p, 1, &plan), WB_E_SIZE);

  /* parts of two dtypes */
  wb_slice_part two[2] = {whole("w", 4, 4), whole("h", 4, 4)};
  d = fp8_dest(8, 4, WB_SCALE_TENSOR);
  d.part_count = 2;
  FX_EXPECT(wb_plan_create(topic, &d, 1, two, 2, &plan), WB_E_DTYPE);
  fx_expect_message("dests[0] part 1 ('h')", "f16", "first part's bf16", NULL);

  /* a 3-D destination with block scales */
  wb_slice_part p3 = WB_SLICE_PART_INIT;
  p3.ndim = 3;
  p3.name = "f";
  p3.extent[0] = 2, p3.extent[1] = 3, p3.extent[2] = 4;
  wb_slice_dest d3 = fp8_dest(2, 3, WB_SCALE_BLOCK);
  d3.ndim = 3;
  d3.shape[2] = 4;
  FX_EXPECT(wb_plan_create(topic, &d3, 1, &p3, 1, &plan), WB_E_SHAPE);
  fx_expect_message("2-D destination", NULL);
  assert_null(plan);

  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(copy_into_refusals, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(plan_refusals, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
