/* DLPack exports describe a tensor exactly as wb_snapshot_tensor / wb_update_tensor do: same bytes, shape,
 * strides, DLPack's dtype codes (bf16 and fp8 included), host device; and bad calls get specific errors. */
#include <dlpack/dlpack.h>

#include "fixture.h"

typedef struct dtype_case {
  int32_t dtype;
  uint8_t code; /* DLPack 1.1 numbering */
  uint8_t bits;
} dtype_case;

static const dtype_case kCases[] = {
    {WB_DTYPE_BOOL, 6, 8},    {WB_DTYPE_U8, 1, 8},      {WB_DTYPE_I8, 0, 8},      {WB_DTYPE_I16, 0, 16},
    {WB_DTYPE_I32, 0, 32},    {WB_DTYPE_I64, 0, 64},    {WB_DTYPE_F16, 2, 16},    {WB_DTYPE_BF16, 4, 16},
    {WB_DTYPE_F32, 2, 32},    {WB_DTYPE_F64, 2, 64},    {WB_DTYPE_F8E4M3, 10, 8}, {WB_DTYPE_F8E5M2, 12, 8},
    {WB_DTYPE_U16, 1, 16},    {WB_DTYPE_U32, 1, 32},    {WB_DTYPE_U64, 1, 64},
};
#define NCASES (sizeof(kCases) / sizeof(kCases[0]))

/* One 3x5 tensor per dtype, named after it, plus a strided view "col" of the f32 one. */
static void create_all_dtypes(wb_client *c, wb_topic **out) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c, "model", &o, out));
  wb_tensor_spec specs[NCASES];
  for (size_t i = 0; i < NCASES; ++i) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.dtype = kCases[i].dtype;
    s.name = wb_dtype_name(kCases[i].dtype);
    s.ndim = 2;
    s.shape[0] = 3;
    s.shape[1] = 5;
    specs[i] = s;
  }
  FX_OK(wb_tensor_alloc(*out, specs, NCASES));
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  v.name = "col";
  v.parent = "f32";
  v.dtype = WB_DTYPE_F32;
  v.byte_offset = 4;
  v.ndim = 1;
  v.shape[0] = 3;
  v.strides[0] = 5;
  FX_OK(wb_tensor_view(*out, &v));
}

static void check_matches(const DLManagedTensor *m, const wb_tensor_info *info) {
  const DLTensor *t = &m->dl_tensor;
  assert_ptr_equal(t->data, info->data);
  assert_int_equal(t->ndim, info->ndim);
  for (uint32_t d = 0; d < info->ndim; ++d) {
    assert_int_equal(t->shape[d], info->shape[d]);
    assert_int_equal(t->strides[d], info->strides[d]);
  }
  assert_int_equal(t->byte_offset, 0);
  assert_int_equal(t->device.device_type, kDLCPU);
  assert_int_equal(t->device.device_id, 0);
  assert_int_equal(t->dtype.lanes, 1);
}

static void snapshot_exports_match_lookups(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "exporter", &c));
  create_all_dtypes(c, &t);
  wb_update *u;
  FX_OK(wb_update_begin(t, 1000, &u));
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  for (size_t i = 0; i < NCASES; ++i) {
    const char *name = wb_dtype_name(kCases[i].dtype);
    DLManagedTensor *m = NULL;
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_snapshot_dlpack(s, name, &m));
    FX_OK(wb_snapshot_tensor(s, name, &info));
    check_matches(m, &info);
    assert_int_equal(m->dl_tensor.dtype.code, kCases[i].code);
    assert_int_equal(m->dl_tensor.dtype.bits, kCases[i].bits);
    m->deleter(m);
  }
  DLManagedTensor *col;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_dlpack(s, "col", &col));
  FX_OK(wb_snapshot_tensor(s, "col", &info));
  check_matches(col, &info);
  assert_int_equal(col->dl_tensor.strides[0], 5);
  col->deleter(col);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

static void update_exports_are_written_in_the_version(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "exporter", &c));
  create_all_dtypes(c, &t);
  wb_update *u;
  FX_OK(wb_update_begin(t, 1000, &u));
  DLManagedTensor *m;
  FX_OK(wb_update_dlpack(u, "i32", &m));
  int32_t *data = m->dl_tensor.data;
  for (int i = 0; i < 15; ++i) data[i] = 100 + i;
  m->deleter(m);
  uint64_t v;
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, v, 1000, &s));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_tensor(s, "i32", &info));
  assert_int_equal(info.version, v); /* marked changed by the export */
  assert_int_equal(((const int32_t *)info.data)[14], 114);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

static void bad_exports_are_refused(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "exporter", &c));
  create_all_dtypes(c, &t);
  wb_update *u;
  DLManagedTensor *m = (DLManagedTensor *)&m;
  FX_OK(wb_update_begin(t, 1000, &u));
  FX_EXPECT(wb_update_dlpack(NULL, "i32", &m), WB_E_INVAL);
  FX_EXPECT(wb_update_dlpack(u, "i32", NULL), WB_E_INVAL);
  FX_EXPECT(wb_update_dlpack(u, "missing", &m), WB_E_NOT_FOUND);
  assert_null(m); /* *out is cleared on failure */
  FX_EXPECT(wb_update_dlpack(u, "col", &m), WB_E_STATE); /* views are written through their parent */
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  FX_EXPECT(wb_snapshot_dlpack(NULL, "i32", &m), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_dlpack(s, "i32", NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_dlpack(s, "missing", &m), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_dlpack(s, NULL, &m), WB_E_INVAL);
  char long_name[WB_NAME_MAX + 2];
  FX_EXPECT(wb_snapshot_dlpack(s, fx_name_of_length(long_name, WB_NAME_MAX + 1), &m), WB_E_NAME_TOO_LONG);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(snapshot_exports_match_lookups, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(update_exports_are_written_in_the_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_exports_are_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
