/* Conversions on the host (weightbus.h, "Conversions"), bit for bit against the independent reference
 * (reference.h), for two versions each:
 * - copy-into: bf16, f16 and f32 tensors of odd shapes (130 x 257, 127 x 129, 1 x 1, 0 x 5, 3 x 4 x 5) into
 *   f8e4m3 and f8e5m2 with per-tensor, per-channel and block scales (128 x 128 by default, 64 x 32, 3 x 5), and
 *   f32 into bf16; zero channels and blocks, a saturating value, FP8 subnormals, NaN and infinity;
 * - plans on a plain topic: two tensors fused along dimension 0, a slice of dimension 1, a padded slice (pads
 *   are zeros, and a block of pads alone has scale 1.0);
 * - plans on a sharded topic: three ranks' uneven dim-0 shards read as a row slice across shard boundaries, a
 *   column slice and whole, the scales computed over the destination as the reader holds it;
 * - a 3-D plan destination fused along its last dimension, per channel and per tensor.
 * Same-dtype copies are unchanged (dtype 0 or the tensor's own). */
#include <math.h>
#include <stdlib.h>

#include "fixture.h"
#include "reference.h"
#include "source-data.h"

#define VERSIONS 2

typedef struct source {
  const char *name;
  int32_t dtype;
  uint32_t ndim;
  int64_t shape[3];
  int special; /* NaN and infinity */
} source;

static const source kSources[] = {
    {"a", WB_DTYPE_BF16, 2, {130, 257, 0}, 0}, {"b", WB_DTYPE_F16, 2, {127, 129, 0}, 0},
    {"c", WB_DTYPE_F32, 2, {130, 257, 0}, 1},  {"d", WB_DTYPE_BF16, 2, {1, 1, 0}, 0},
    {"e", WB_DTYPE_F32, 2, {0, 5, 0}, 0},      {"f", WB_DTYPE_BF16, 3, {3, 4, 5}, 0},
    {"h", WB_DTYPE_BF16, 2, {64, 257, 0}, 1},
};
#define SOURCES (sizeof(kSources) / sizeof(kSources[0]))

static uint64_t rows_of(const source *s) { return s->ndim == 3 ? (uint64_t)(s->shape[0] * s->shape[1]) : (uint64_t)s->shape[0]; }
static uint64_t cols_of(const source *s) { return (uint64_t)s->shape[s->ndim - 1]; }

/* Every source's bytes of the version last published, kept for the reference. */
static void *g_bytes[SOURCES];

static void create_topic(wb_client *c, wb_topic **out) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c, "model", &o, out));
  wb_tensor_spec specs[SOURCES];
  for (size_t t = 0; t < SOURCES; ++t) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.dtype = kSources[t].dtype;
    s.name = kSources[t].name;
    s.ndim = kSources[t].ndim;
    memcpy(s.shape, kSources[t].shape, sizeof(kSources[t].shape));
    specs[t] = s;
  }
  FX_OK(wb_tensor_alloc(*out, specs, SOURCES));
}

static void publish(wb_topic *topic, uint64_t *version) {
  wb_update *u;
  uint64_t v;
  FX_OK(wb_update_begin(topic, 5000, &u));
  FX_OK(wb_update_version(u, &v));
  for (size_t t = 0; t < SOURCES; ++t) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_tensor(u, kSources[t].name, &info));
    src_fill(info.data, kSources[t].dtype, v, (uint32_t)t, rows_of(&kSources[t]), cols_of(&kSources[t]),
             kSources[t].special);
    free(g_bytes[t]);
    g_bytes[t] = malloc(info.nbytes + 1);
    memcpy(g_bytes[t], info.data, info.nbytes);
  }
  FX_OK(wb_update_publish(u, NULL, 0, version));
}

/* A layout to check: WB_SCALE_* with its block (0 x 0 for the default). */
typedef struct layout {
  uint32_t scale_layout, block_rows, block_cols;
} layout;

static const layout kLayouts[] = {
    {WB_SCALE_TENSOR, 0, 0}, {WB_SCALE_CHANNEL, 0, 0}, {WB_SCALE_BLOCK, 0, 0},
    {WB_SCALE_BLOCK, 64, 32}, {WB_SCALE_BLOCK, 3, 5},
};
#define LAYOUTS (sizeof(kLayouts) / sizeof(kLayouts[0]))

/* The [rows, cols] view of a shape in a layout (weightbus.h). */
static void view_of(uint32_t ndim, const int64_t *shape, uint32_t scale_layout, uint64_t *rows, uint64_t *cols) {
  *rows = 1, *cols = 1;
  for (uint32_t d = 0; d < ndim; ++d) {
    int in_rows = scale_layout == WB_SCALE_CHANNEL ? d == 0 : d + 1 < ndim;
    *(in_rows ? rows : cols) *= (uint64_t)shape[d];
  }
}

/* Checks codes and scales that the library wrote for x (the destination's elements, widened) in layout l. */
static void check_against_reference(const char *what, const float *x, uint32_t ndim, const int64_t *shape,
                                    int32_t dtype, layout l, const uint8_t *codes, const float *scales) {
  uint64_t rows, cols;
  view_of(ndim, shape, l.scale_layout, &rows, &cols);
  const uint64_t br = l.block_rows ? l.block_rows : 128, bc = l.block_cols ? l.block_cols : 128;
  const uint64_t n = rows * cols, ns = ref_scale_count(rows, cols, l.scale_layout, br, bc);
  uint8_t *want = malloc(n + 1);
  float *want_scales = malloc((ns + 1) * sizeof(float));
  ref_quantize(x, rows, cols, dtype, l.scale_layout, br, bc, want, want_scales);
  if (ref_compare(what, codes, want, n, scales, want_scales, ns) >= 0) fail_msg("%s differs (see stderr)", what);
  free(want);
  free(want_scales);
}

/* A source's elements of the last version, widened. */
static float *widened(size_t t) {
  const uint64_t n = rows_of(&kSources[t]) * cols_of(&kSources[t]);
  float *x = malloc((n + 1) * sizeof(float));
  for (uint64_t i = 0; i < n; ++i) x[i] = ref_widen(g_bytes[t], i, kSources[t].dtype);
  return x;
}

static void copy_into_converts_every_layout_and_dtype(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *topic;
  FX_OK(fx_attach(*state, "trainer", &pc));
  FX_OK(fx_attach(*state, "server", &rc));
  create_topic(pc, &pub);
  FX_OK(wb_topic_open(rc, "model", &topic));
  for (int k = 0; k < VERSIONS; ++k) {
    uint64_t v;
    publish(pub, &v);
    wb_snapshot *s;
    FX_OK(wb_snapshot_acquire(topic, v, 1000, &s));
    for (size_t t = 0; t < SOURCES; ++t) {
      const source *src = &kSources[t];
      const uint64_t n = rows_of(src) * cols_of(src);
      float *x = widened(t);
      const int32_t fp8[2] = {WB_DTYPE_F8E4M3, WB_DTYPE_F8E5M2};
      for (int f = 0; f < 2; ++f) {
        for (size_t l = 0; l < LAYOUTS; ++l) {
          if (kLayouts[l].scale_layout == WB_SCALE_BLOCK && src->ndim != 2) continue; /* refused: the other test */
          char what[96];
          snprintf(what, sizeof(what), "'%s' %s -> %s, layout %u block %ux%u", src->name, wb_dtype_name(src->dtype),
                   wb_dtype_name(fp8[f]), kLayouts[l].scale_layout, kLayouts[l].block_rows, kLayouts[l].block_cols);
          uint8_t *codes = malloc(n + 16);
          float scales[64 * 64];
          memset(codes, 0xEE, n + 16);
          wb_copy_target target = WB_COPY_TARGET_INIT;
          target.name = src->name;
          target.dst = codes;
          target.dst_bytes = n;
          target.dtype = fp8[f];
          target.scale_layout = kLayouts[l].scale_layout;
          target.block_rows = kLayouts[l].block_rows;
          target.block_cols = kLayouts[l].block_cols;
          target.scale = scales;
          target.scale_bytes = sizeof(scales);
          FX_OK(wb_snapshot_copy_into(s, &target, 1, NULL));
          check_against_reference(what, x, src->ndim, src->shape, fp8[f], kLayouts[l], codes, scales);
          for (int g = 0; g < 16; ++g) assert_int_equal(codes[n + g], 0xEE); /* nothing past dst */
          free(codes);
        }
      }
      if (src->dtype == WB_DTYPE_F32) { /* f32 -> bf16 */
        uint16_t *out = malloc(n * 2 + 2);
        wb_copy_target target = WB_COPY_TARGET_INIT;
        target.name = src->name;
        target.dst = out;
        target.dst_bytes = n * 2;
        target.dtype = WB_DTYPE_BF16;
        FX_OK(wb_snapshot_copy_into(s, &target, 1, NULL));
        for (uint64_t i = 0; i < n; ++i) {
          if (out[i] != ref_bf16(x[i])) fail_msg("'%s' bf16 element %llu: 0x%04x, want 0x%04x", src->name,
                                                 (unsigned long long)i, out[i], ref_bf16(x[i]));
        }
        free(out);
      }
      /* dtype 0 and the tensor's own dtype: the bytes, unchanged */
      for (int same = 0; same < 2; ++same) {
        const uint64_t bytes = n * wb_dtype_size(src->dtype);
        char *out = malloc(bytes + 1);
        wb_copy_target target = WB_COPY_TARGET_INIT;
        target.name = src->name;
        target.dst = out;
        target.dst_bytes = bytes;
        target.dtype = same ? src->dtype : 0;
        FX_OK(wb_snapshot_copy_into(s, &target, 1, NULL));
        assert_memory_equal(out, g_bytes[t], bytes);
        free(out);
      }
      free(x);
    }
    FX_OK(wb_snapshot_release(s));
  }
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

/* One destination of a plan: its parts (boxes of 2-D tensors, concatenated along dimension 0) and layout. */
typedef struct dest_case {
  const char *what;
  uint32_t parts;
  const char *names[2];
  int64_t offset[2][2], extent[2][2];
  int64_t pad; /* after the last part */
  layout l;
  int32_t dtype;
} dest_case;

/* Builds the destination's elements from the logical tensors' (logical(t) gives tensor name's widened elements
 * and columns), pads zero. */
typedef const float *(*logical_fn)(const char *name, int64_t *cols);

static void run_plan_case(wb_topic *topic, wb_snapshot *s, const dest_case *dc, logical_fn logical) {
  wb_slice_part parts[2];
  int64_t rows = 0;
  for (uint32_t j = 0; j < dc->parts; ++j) {
    wb_slice_part p = WB_SLICE_PART_INIT;
    p.ndim = 2;
    p.name = dc->names[j];
    memcpy(p.offset, dc->offset[j], sizeof(dc->offset[j]));
    memcpy(p.extent, dc->extent[j], sizeof(dc->extent[j]));
    if (j + 1 == dc->parts) p.pad = dc->pad;
    parts[j] = p;
    rows += p.extent[0] + p.pad;
  }
  const int64_t cols = dc->extent[0][1];
  const uint64_t n = (uint64_t)(rows * cols);
  float *x = calloc(n + 1, sizeof(float));
  int64_t at = 0;
  for (uint32_t j = 0; j < dc->parts; ++j) {
    int64_t lcols;
    const float *whole = logical(dc->names[j], &lcols);
    for (int64_t r = 0; r < dc->extent[j][0]; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        x[(at + r) * cols + c] = whole[(dc->offset[j][0] + r) * lcols + dc->offset[j][1] + c];
      }
    }
    at += dc->extent[j][0];
  }
  wb_slice_dest d = WB_SLICE_DEST_INIT;
  d.part_count = dc->parts;
  d.ndim = 2;
  d.shape[0] = rows;
  d.shape[1] = cols;
  d.dtype = dc->dtype;
  const uint32_t es = wb_dtype_size(dc->dtype);
  d.dst_bytes = n * es;
  char *out = malloc(n * es + 16);
  memset(out, 0xEE, n * es + 16);
  d.dst = out;
  float scales[64 * 64];
  d.scale_layout = dc->l.scale_layout;
  d.block_rows = dc->l.block_rows;
  d.block_cols = dc->l.block_cols;
  if (dc->l.scale_layout != WB_SCALE_NONE) {
    d.scale = scales;
    d.scale_bytes = sizeof(scales);
  }
  wb_plan *plan;
  FX_OK(wb_plan_create(topic, &d, 1, parts, dc->parts, &plan));
  FX_OK(wb_plan_run(plan, s, NULL));
  if (dc->dtype == WB_DTYPE_BF16) {
    const uint16_t *got = (const uint16_t *)out;
    for (uint64_t i = 0; i < n; ++i) {
      if (got[i] != ref_bf16(x[i])) fail_msg("%s: element %llu 0x%04x, want 0x%04x", dc->what, (unsigned long long)i,
                                             got[i], ref_bf16(x[i]));
    }
  } else {
    check_against_reference(dc->what, x, 2, d.shape, dc->dtype, dc->l, (const uint8_t *)out, scales);
  }
  for (int g = 0; g < 16; ++g) assert_int_equal((uint8_t)out[n * es + g], 0xEE);
  wb_plan_info info = WB_PLAN_INFO_INIT;
  FX_OK(wb_plan_get_info(plan, &info));
  assert_int_equal(info.bytes, (uint64_t)(rows - dc->pad) * (uint64_t)cols * es);
  wb_plan_destroy(plan);
  free(out);
  free(x);
}

/* The plain topic's tensors, widened (kept per call: the cases read at most two at once). */
static float *g_logical[SOURCES];

static const float *plain_logical(const char *name, int64_t *cols) {
  for (size_t t = 0; t < SOURCES; ++t) {
    if (strcmp(kSources[t].name, name) != 0) continue;
    free(g_logical[t]);
    g_logical[t] = widened(t);
    *cols = (int64_t)cols_of(&kSources[t]);
    return g_logical[t];
  }
  fail_msg("no source '%s'", name);
  return NULL;
}

static void plans_convert_fused_sliced_and_padded_destinations(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *topic;
  FX_OK(fx_attach(*state, "trainer", &pc));
  FX_OK(fx_attach(*state, "server", &rc));
  create_topic(pc, &pub);
  FX_OK(wb_topic_open(rc, "model", &topic));
  const layout block64 = {WB_SCALE_BLOCK, 64, 32}, block = {WB_SCALE_BLOCK, 0, 0};
  const layout channel = {WB_SCALE_CHANNEL, 0, 0}, tensor = {WB_SCALE_TENSOR, 0, 0}, none = {WB_SCALE_NONE, 0, 0};
  const dest_case cases[] = {
      {"fused a;h block 64x32", 2, {"a", "h"}, {{0, 0}, {0, 0}}, {{130, 257}, {64, 257}}, 0, block64, WB_DTYPE_F8E4M3},
      {"fused a;h channel", 2, {"a", "h"}, {{0, 0}, {0, 0}}, {{130, 257}, {64, 257}}, 0, channel, WB_DTYPE_F8E5M2},
      {"fused a;h tensor", 2, {"a", "h"}, {{0, 0}, {0, 0}}, {{130, 257}, {64, 257}}, 0, tensor, WB_DTYPE_F8E4M3},
      {"a cols 7..200 block", 1, {"a"}, {{0, 7}}, {{130, 193}}, 0, block, WB_DTYPE_F8E4M3},
      {"a rows 3..103 + 28 pad rows, block 64x32", 1, {"a"}, {{3, 0}}, {{100, 257}}, 28, block64, WB_DTYPE_F8E4M3},
      {"c rows 1..129 cols 5..105 channel", 1, {"c"}, {{1, 5}}, {{128, 100}}, 0, channel, WB_DTYPE_F8E4M3},
      {"c cols 9..250 bf16", 1, {"c"}, {{0, 9}}, {{130, 241}}, 0, none, WB_DTYPE_BF16},
  };
  for (int k = 0; k < VERSIONS; ++k) {
    uint64_t v;
    publish(pub, &v);
    wb_snapshot *s;
    FX_OK(wb_snapshot_acquire(topic, v, 1000, &s));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) run_plan_case(topic, s, &cases[i], plain_logical);
    FX_OK(wb_snapshot_release(s));
  }
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

/* A 3-D destination fused along its last dimension (f[:, :, 0:2] then f[:, :, 2:5]): its runs cross the rows of
 * the per-channel view [3, 20] and are cut where they end; per-channel and per-tensor scales. */
static void plans_convert_a_3d_destination_fused_along_its_last_dimension(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *topic;
  FX_OK(fx_attach(*state, "trainer", &pc));
  FX_OK(fx_attach(*state, "server", &rc));
  create_topic(pc, &pub);
  FX_OK(wb_topic_open(rc, "model", &topic));
  uint64_t v;
  publish(pub, &v);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(topic, v, 1000, &s));
  const size_t f = 5; /* kSources[5]: "f", bf16 [3, 4, 5] */
  float *x = widened(f);
  wb_slice_part parts[2];
  for (int j = 0; j < 2; ++j) {
    wb_slice_part p = WB_SLICE_PART_INIT;
    p.ndim = 3;
    p.name = "f";
    p.extent[0] = 3, p.extent[1] = 4;
    p.offset[2] = j == 0 ? 0 : 2;
    p.extent[2] = j == 0 ? 2 : 3;
    parts[j] = p;
  }
  const layout layouts[2] = {{WB_SCALE_CHANNEL, 0, 0}, {WB_SCALE_TENSOR, 0, 0}};
  for (int l = 0; l < 2; ++l) {
    wb_slice_dest d = WB_SLICE_DEST_INIT;
    d.part_count = 2;
    d.concat_dim = 2;
    d.ndim = 3;
    d.shape[0] = 3, d.shape[1] = 4, d.shape[2] = 5;
    d.dtype = WB_DTYPE_F8E4M3;
    uint8_t out[60];
    float scales[3];
    d.dst = out;
    d.dst_bytes = sizeof(out);
    d.scale_layout = layouts[l].scale_layout;
    d.scale = scales;
    d.scale_bytes = sizeof(scales);
    wb_plan *plan;
    FX_OK(wb_plan_create(topic, &d, 1, parts, 2, &plan));
    FX_OK(wb_plan_run(plan, s, NULL));
    check_against_reference(l == 0 ? "3-D fused, channel" : "3-D fused, tensor", x, 3, d.shape, WB_DTYPE_F8E4M3,
                            layouts[l], out, scales);
    wb_plan_destroy(plan);
  }
  free(x);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

/* The sharded topic: "w", f32 [130, 257], torch.chunk'd over RANKS ranks along dimension 0 (44, 44, 42 rows). */
#define RANKS 3
static float g_sharded[130 * 257];

static const float *sharded_logical(const char *name, int64_t *cols) {
  (void)name;
  *cols = 257;
  return g_sharded;
}

static void plans_convert_across_the_shards_of_ranks(void **state) {
  wb_client *clients[RANKS], *rc;
  wb_topic *ranks[RANKS], *topic;
  for (uint32_t r = 0; r < RANKS; ++r) {
    FX_OK(fx_attach(*state, "rank", &clients[r]));
    FX_OK(fx_create_rank(clients[r], "model", 2, r, RANKS, &ranks[r]));
    int64_t off, ext;
    FX_OK(wb_split(130, r, RANKS, WB_SPLIT_CHUNK, &off, &ext));
    wb_shard_spec spec = fx_shard_2d("w", WB_DTYPE_F32, 130, 257, off, ext, 0, 257);
    FX_OK(wb_shard_alloc(ranks[r], &spec, 1));
  }
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_topic_seal_rank(ranks[r], 5000));
  FX_OK(fx_attach(*state, "server", &rc));
  FX_OK(wb_topic_open(rc, "model", &topic));
  const layout block64 = {WB_SCALE_BLOCK, 64, 32}, channel = {WB_SCALE_CHANNEL, 0, 0};
  const layout tensor = {WB_SCALE_TENSOR, 0, 0};
  const dest_case cases[] = {
      {"rows 10..130 across shards, block 64x32", 1, {"w"}, {{10, 0}}, {{120, 257}}, 0, block64, WB_DTYPE_F8E4M3},
      {"whole, channel", 1, {"w"}, {{0, 0}}, {{130, 257}}, 0, channel, WB_DTYPE_F8E5M2},
      {"cols 7..200, tensor", 1, {"w"}, {{0, 7}}, {{130, 193}}, 0, tensor, WB_DTYPE_F8E4M3},
  };
  for (int k = 0; k < VERSIONS; ++k) {
    uint64_t v = 0;
    for (uint32_t r = 0; r < RANKS; ++r) {
      int64_t off, ext;
      FX_OK(wb_split(130, r, RANKS, WB_SPLIT_CHUNK, &off, &ext));
      wb_update *u;
      FX_OK(wb_update_begin(ranks[r], 5000, &u));
      FX_OK(wb_update_version(u, &v));
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      FX_OK(wb_update_shard(u, "w", 0, &info));
      for (int64_t row = 0; row < ext; ++row) {
        for (int64_t c = 0; c < 257; ++c) {
          float f = src_value(v, 9, (uint64_t)(off + row), (uint64_t)c, 130, 257, 0);
          ((float *)info.data)[row * 257 + c] = f;
          g_sharded[(off + row) * 257 + c] = f;
        }
      }
      FX_OK(wb_update_publish(u, NULL, 0, NULL));
    }
    uint64_t latest;
    FX_OK(wb_topic_wait(topic, v - 1, 5000, &latest));
    wb_snapshot *s;
    FX_OK(wb_snapshot_acquire(topic, v, 1000, &s));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) run_plan_case(topic, s, &cases[i], sharded_logical);
    FX_OK(wb_snapshot_release(s));
  }
  FX_OK(wb_detach(rc));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_detach(clients[r]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(copy_into_converts_every_layout_and_dtype, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(plans_convert_fused_sliced_and_padded_destinations, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(plans_convert_a_3d_destination_fused_along_its_last_dimension, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(plans_convert_across_the_shards_of_ranks, fx_setup, fx_teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  for (size_t t = 0; t < SOURCES; ++t) free(g_bytes[t]), free(g_logical[t]);
  return failed;
}
