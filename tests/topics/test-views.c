/* A view is a strided window on another tensor's (or view's) bytes: it costs no storage, shows the parent's
 * bytes in every snapshot, must lie inside its parent, cannot be written directly, and any client of the
 * topic may add one at any time. */
#include "fixture.h"

/* qkv: f32[12][8]; rows 4..7 are "k". */
#define ROWS 12
#define COLS 8

typedef struct views {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} views;

static wb_view_spec view(const char *name, const char *parent, int32_t dtype, uint64_t offset, uint32_t ndim,
                         const int64_t *shape, const int64_t *strides) {
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  v.name = name;
  v.parent = parent;
  v.dtype = dtype;
  v.byte_offset = offset;
  v.ndim = ndim;
  for (uint32_t d = 0; d < ndim && d < WB_MAX_DIMS; ++d) {
    v.shape[d] = shape[d];
    v.strides[d] = strides[d];
  }
  return v;
}

static const int64_t k_shape[2] = {4, COLS}, k_strides[2] = {COLS, 1};
static const int64_t col_shape[1] = {ROWS}, col_strides[1] = {COLS};
static const int64_t row_shape[1] = {COLS}, row_strides[1] = {1};
static const int64_t one[1] = {1}, unit[1] = {1};

static void setup_qkv(fx_broker *b, views *t) {
  FX_OK(fx_attach(b, "publisher", &t->pc));
  FX_OK(fx_attach(b, "reader", &t->rc));
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(t->pc, "model", &o, &t->pub));
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = "qkv";
  s.dtype = WB_DTYPE_F32;
  s.ndim = 2;
  s.shape[0] = ROWS;
  s.shape[1] = COLS;
  FX_OK(wb_tensor_alloc(t->pub, &s, 1));
  FX_OK(wb_topic_open(t->rc, "model", &t->reader));
}

static void teardown_qkv(views *t) {
  FX_OK(wb_detach(t->rc));
  FX_OK(wb_detach(t->pc));
}

static uint64_t publish_qkv(wb_topic *pub) {
  wb_update *u;
  uint64_t v, published;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_begin(pub, 1000, &u));
  FX_OK(wb_update_version(u, &v));
  FX_OK(wb_update_tensor(u, "qkv", &info));
  float *f = info.data;
  for (int i = 0; i < ROWS * COLS; ++i) f[i] = (float)(v * 1000 + (uint64_t)i);
  FX_OK(wb_update_publish(u, NULL, 0, &published));
  return published;
}

static void views_show_parent_bytes(void **state) {
  views t;
  setup_qkv(*state, &t);
  wb_view_spec k = view("k", "qkv", WB_DTYPE_F32, 4 * COLS * 4, 2, k_shape, k_strides);
  wb_view_spec col = view("col0", "qkv", WB_DTYPE_F32, 0, 1, col_shape, col_strides);
  wb_view_spec k_row1 = view("k_row1", "k", WB_DTYPE_F32, COLS * 4, 1, row_shape, row_strides); /* of a view */
  FX_OK(wb_tensor_view(t.pub, &k));
  FX_OK(wb_tensor_view(t.pub, &col));
  FX_OK(wb_tensor_view(t.pub, &k_row1));

  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(t.reader, &count));
  assert_int_equal(count, 4);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_topic_tensor(t.reader, 2, &info));
  assert_string_equal(info.name, "col0");
  assert_int_equal(info.is_view, 1);
  assert_int_equal(info.ndim, 1);
  assert_int_equal(info.shape[0], ROWS);
  assert_int_equal(info.strides[0], COLS);
  assert_int_equal(info.nbytes, ((ROWS - 1) * COLS + 1) * 4); /* bytes spanned, not elements * size */
  assert_null(info.data);

  uint64_t v = publish_qkv(t.pub);
  wb_snapshot *s;
  wb_tensor_info q = WB_TENSOR_INFO_INIT, ki = WB_TENSOR_INFO_INIT, ci = WB_TENSOR_INFO_INIT,
                 ri = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_acquire(t.reader, 0, 1000, &s));
  FX_OK(wb_snapshot_tensor(s, "qkv", &q));
  FX_OK(wb_snapshot_tensor(s, "k", &ki));
  FX_OK(wb_snapshot_tensor(s, "col0", &ci));
  FX_OK(wb_snapshot_tensor(s, "k_row1", &ri));
  assert_ptr_equal(ki.data, (char *)q.data + 4 * COLS * 4); /* zero-copy: the parent's bytes */
  assert_ptr_equal(ci.data, q.data);
  assert_ptr_equal(ri.data, (char *)q.data + 5 * COLS * 4);
  assert_int_equal(ki.version, v); /* a view was written when its parent was */
  assert_int_equal(ki.is_view, 1);
  const float *kf = ki.data, *cf = ci.data, *rf = ri.data;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < COLS; ++c) assert_true(kf[r * COLS + c] == (float)(v * 1000 + (uint64_t)((4 + r) * COLS + c)));
  for (int r = 0; r < ROWS; ++r) assert_true(cf[r * COLS] == (float)(v * 1000 + (uint64_t)(r * COLS)));
  for (int c = 0; c < COLS; ++c) assert_true(rf[c] == (float)(v * 1000 + (uint64_t)(5 * COLS + c)));
  FX_OK(wb_snapshot_release(s));
  teardown_qkv(&t);
}

static void window_must_lie_inside_parent(void **state) {
  views t;
  setup_qkv(*state, &t);
  const int64_t too_many_rows[2] = {ROWS + 1, COLS};
  const int64_t two[1] = {2}, wide[1] = {ROWS * COLS};
  wb_view_spec v;
  v = view("x", "qkv", WB_DTYPE_F32, 0, 2, too_many_rows, k_strides);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SIZE);
  v = view("x", "qkv", WB_DTYPE_F32, ROWS * COLS * 4, 1, one, unit); /* starts at the end */
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SIZE);
  v = view("x", "qkv", WB_DTYPE_F32, (ROWS * COLS - 1) * 4, 1, two, unit); /* one element past */
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SIZE);
  v = view("x", "qkv", WB_DTYPE_F32, 0, 1, two, wide); /* the stride steps past the end */
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SIZE);
  v = view("x", "qkv", WB_DTYPE_F32, UINT64_MAX - 3, 1, one, unit); /* offset arithmetic overflows */
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SIZE);
  /* A view of a view is bounded by that view, not by the storage around it. */
  wb_view_spec k = view("k", "qkv", WB_DTYPE_F32, 4 * COLS * 4, 2, k_shape, k_strides);
  FX_OK(wb_tensor_view(t.pub, &k));
  v = view("x", "k", WB_DTYPE_F32, 4 * COLS * 4, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SIZE);
  /* Exactly the last element is inside. */
  v = view("last", "qkv", WB_DTYPE_F32, (ROWS * COLS - 1) * 4, 1, one, unit);
  FX_OK(wb_tensor_view(t.pub, &v));
  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(t.pub, &count));
  assert_int_equal(count, 3);
  teardown_qkv(&t);
}

static void bad_view_specs_are_refused(void **state) {
  views t;
  char name[WB_NAME_MAX + 2];
  setup_qkv(*state, &t);
  const int64_t negative[1] = {-1}, nine[WB_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  wb_view_spec v;
  v = view("x", "no-such-parent", WB_DTYPE_F32, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_NOT_FOUND);
  v = view("qkv", "qkv", WB_DTYPE_F32, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_EXISTS);
  v = view("x", "qkv", 0, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_DTYPE);
  v = view("x", "qkv", 77, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_DTYPE);
  v = view("x", "qkv", WB_DTYPE_F32, 0, 1, negative, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SHAPE);
  v = view("x", "qkv", WB_DTYPE_F32, 0, 1, one, negative);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SHAPE);
  v = view("x", "qkv", WB_DTYPE_F32, 0, WB_MAX_DIMS, nine, nine);
  v.ndim = WB_MAX_DIMS + 1;
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_SHAPE);
  v = view("", "qkv", WB_DTYPE_F32, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_NAME_TOO_LONG);
  v = view(fx_name_of_length(name, WB_NAME_MAX + 1), "qkv", WB_DTYPE_F32, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_NAME_TOO_LONG);
  v = view(NULL, "qkv", WB_DTYPE_F32, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_INVAL);
  v = view("x", NULL, WB_DTYPE_F32, 0, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_INVAL);
  /* byte_offset must be a multiple of the dtype's size. */
  v = view("x", "qkv", WB_DTYPE_F32, 2, 1, one, unit);
  FX_EXPECT(wb_tensor_view(t.pub, &v), WB_E_DTYPE);
  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(t.pub, &count));
  assert_int_equal(count, 1); /* nothing was added by a refused spec */
  teardown_qkv(&t);
}

static void views_are_written_through_their_parent(void **state) {
  views t;
  setup_qkv(*state, &t);
  wb_view_spec k = view("k", "qkv", WB_DTYPE_F32, 4 * COLS * 4, 2, k_shape, k_strides);
  FX_OK(wb_tensor_view(t.pub, &k));
  wb_update *u;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_begin(t.pub, 1000, &u));
  FX_EXPECT(wb_update_tensor(u, "k", &info), WB_E_STATE);
  FX_EXPECT(wb_update_tensor_at(u, 1, &info), WB_E_STATE);
  FX_EXPECT(wb_update_tensor(u, "nope", &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_update_tensor_at(u, 2, &info), WB_E_NOT_FOUND);
  FX_OK(wb_update_abort(u));
  teardown_qkv(&t);
}

static void reader_adds_view_after_publish(void **state) {
  views t;
  setup_qkv(*state, &t);
  uint64_t v = publish_qkv(t.pub);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t.reader, 0, 1000, &s));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_EXPECT(wb_snapshot_tensor(s, "late", &info), WB_E_NOT_FOUND);
  /* Any client that opened the topic may add a view at any time, also after the layout is sealed; the
   * next lookup sees it, even in a snapshot taken before. */
  wb_view_spec late = view("late", "qkv", WB_DTYPE_F32, COLS * 4, 1, row_shape, row_strides);
  FX_OK(wb_tensor_view(t.reader, &late));
  FX_OK(wb_snapshot_tensor(s, "late", &info));
  assert_int_equal(info.version, v);
  assert_true(((const float *)info.data)[0] == (float)(v * 1000 + COLS));
  FX_OK(wb_snapshot_release(s));
  wb_tensor_info pinfo = WB_TENSOR_INFO_INIT;
  FX_OK(wb_topic_tensor(t.pub, 1, &pinfo)); /* the publisher's handle sees it too */
  assert_string_equal(pinfo.name, "late");
  teardown_qkv(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(views_show_parent_bytes, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(window_must_lie_inside_parent, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_view_specs_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(views_are_written_through_their_parent, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(reader_adds_view_after_publish, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
