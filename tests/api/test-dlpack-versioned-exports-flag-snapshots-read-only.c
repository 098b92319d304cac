/* DLPack 1.x versioned exports: the struct has DLPack 1.x's published layout, a snapshot's export is version
 * {1, 1} and flagged read-only while an update's is writable and unflagged, both describe the tensor as the
 * legacy export does, a snapshot's export holds the lease until its deleter (called once) runs, and bad calls
 * get specific errors. */
#include <stddef.h>
#include <string.h>
#include <weightbus/dlpack_versioned.h>

#include "fixture.h"

#define ELEMS 64

typedef struct DLManagedTensorVersioned Versioned;

/* The offsets DLPack 1.x publishes for its ABI on LP64 (every platform weightbus builds for): a consumer that
 * finds another layout reads garbage, so they are checked against the numbers, not against our declaration. */
static void layout_is_the_dlpack_1_abi(void **state) {
  (void)state;
  assert_int_equal(sizeof(DLPackVersion), 8);
  assert_int_equal(offsetof(DLPackVersion, major), 0);
  assert_int_equal(offsetof(DLPackVersion, minor), 4);
  assert_int_equal(offsetof(Versioned, version), 0);
  assert_int_equal(offsetof(Versioned, manager_ctx), 8);
  assert_int_equal(offsetof(Versioned, deleter), 16);
  assert_int_equal(offsetof(Versioned, flags), 24);
  assert_int_equal(offsetof(Versioned, dl_tensor), 32);
  assert_int_equal(sizeof(DLTensor), 48);
  assert_int_equal(sizeof(Versioned), 80);
  assert_int_equal(DLPACK_FLAG_BITMASK_READ_ONLY, 1);
  assert_int_equal(DLPACK_FLAG_BITMASK_IS_COPIED, 2);
}

static void assert_same_tensor(const DLManagedTensor *legacy, const Versioned *v) {
  const DLTensor *a = &legacy->dl_tensor, *b = &v->dl_tensor;
  assert_ptr_equal(a->data, b->data);
  assert_int_equal(a->ndim, b->ndim);
  assert_int_equal(a->shape[0], b->shape[0]);
  assert_int_equal(a->strides[0], b->strides[0]);
  assert_int_equal(a->byte_offset, b->byte_offset);
  assert_int_equal(a->device.device_type, b->device.device_type);
  assert_int_equal(a->device.device_id, b->device.device_id);
  assert_memory_equal(&a->dtype, &b->dtype, sizeof(DLDataType));
}

static void snapshot_exports_are_read_only(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "exporter", &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, ELEMS, &t));
  FX_OK(fx_publish(t, 1, ELEMS, NULL));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  Versioned *v;
  DLManagedTensor *legacy;
  FX_OK(wb_snapshot_dlpack_versioned(s, "t0", &v));
  FX_OK(wb_snapshot_dlpack(s, "t0", &legacy));
  assert_int_equal(v->version.major, 1);
  assert_int_equal(v->version.minor, 1);
  assert_int_equal(v->flags, DLPACK_FLAG_BITMASK_READ_ONLY);
  assert_non_null(v->manager_ctx);
  assert_same_tensor(legacy, v);
  assert_int_equal(fx_check_u32(v->dl_tensor.data, ELEMS, 1, 0), -1); /* version 1's bytes */
  legacy->deleter(legacy);
  v->deleter(v);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

static void update_exports_are_writable(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "exporter", &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, ELEMS, &t));
  wb_update *u;
  FX_OK(wb_update_begin(t, 1000, &u));
  Versioned *v;
  FX_OK(wb_update_dlpack_versioned(u, "t0", &v));
  assert_int_equal(v->version.major, 1);
  assert_int_equal(v->version.minor, 1);
  assert_int_equal(v->flags, 0);
  fx_fill_u32(v->dl_tensor.data, ELEMS, 1, 0);
  v->deleter(v);
  uint64_t version;
  FX_OK(wb_update_publish(u, NULL, 0, &version));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, version, 1000, &s));
  FX_OK(fx_check_tensor(s, 0, ELEMS, version)); /* marked changed by the export, and written through it */
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

static int begin_and_abort(wb_topic *pub, int64_t timeout_ms) {
  wb_update *u;
  int rc = wb_update_begin(pub, timeout_ms, &u);
  if (rc == WB_OK) wb_update_abort(u);
  return rc;
}

static int deleter_calls;
static void (*library_deleter)(Versioned *);

static void counting_deleter(Versioned *v) {
  ++deleter_calls;
  library_deleter(v);
}

/* R = 1, so that any lease on the latest version blocks the next begin. */
static void exports_hold_the_lease_until_their_deleter(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  FX_OK(fx_attach(*state, "publisher", &pc));
  FX_OK(fx_attach(*state, "reader", &rc));
  FX_OK(fx_create_topic(pc, "model", 1, 1, ELEMS, &pub));
  FX_OK(fx_publish(pub, 1, ELEMS, NULL));
  FX_OK(wb_topic_open(rc, "model", &reader));
  wb_snapshot *s;
  Versioned *v;
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  FX_OK(wb_snapshot_dlpack_versioned(s, "t0", &v));
  FX_OK(wb_snapshot_release(s));
  assert_int_equal(fx_check_u32(v->dl_tensor.data, ELEMS, 1, 0), -1); /* still mapped, still version 1 */
  FX_EXPECT(begin_and_abort(pub, 50), WB_E_TIMEOUT);
  FX_EXPECT(wb_topic_close(reader), WB_E_STATE);
  library_deleter = v->deleter;
  v->deleter = counting_deleter;
  v->deleter(v);
  assert_int_equal(deleter_calls, 1);
  FX_OK(begin_and_abort(pub, 1000));
  FX_OK(wb_topic_close(reader));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

static void expect_message(const char *part) {
  if (strstr(wb_last_error(), part) == NULL) fail_msg("wb_last_error() \"%s\" lacks \"%s\"", wb_last_error(), part);
}

static void bad_versioned_exports_are_refused(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "exporter", &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, ELEMS, &t));
  wb_view_spec view = WB_VIEW_SPEC_INIT;
  view.name = "half";
  view.parent = "t0";
  view.dtype = WB_DTYPE_U32;
  view.ndim = 1;
  view.shape[0] = ELEMS / 2;
  view.strides[0] = 1;
  FX_OK(wb_tensor_view(t, &view));
  wb_update *u;
  Versioned *v = (Versioned *)&v;
  FX_OK(wb_update_begin(t, 1000, &u));
  FX_EXPECT(wb_update_dlpack_versioned(NULL, "t0", &v), WB_E_INVAL);
  expect_message("update or out is NULL");
  FX_EXPECT(wb_update_dlpack_versioned(u, "t0", NULL), WB_E_INVAL);
  FX_EXPECT(wb_update_dlpack_versioned(u, "missing", &v), WB_E_NOT_FOUND);
  expect_message("missing");
  assert_null(v); /* *out is cleared on failure */
  FX_EXPECT(wb_update_dlpack_versioned(u, "half", &v), WB_E_STATE); /* views are written through their parent */
  expect_message("is a view");
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  v = (Versioned *)&v;
  FX_EXPECT(wb_snapshot_dlpack_versioned(NULL, "t0", &v), WB_E_INVAL);
  expect_message("snapshot or out is NULL");
  FX_EXPECT(wb_snapshot_dlpack_versioned(s, "t0", NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_dlpack_versioned(s, "missing", &v), WB_E_NOT_FOUND);
  expect_message("missing");
  assert_null(v);
  FX_EXPECT(wb_snapshot_dlpack_versioned(s, NULL, &v), WB_E_INVAL);
  char long_name[WB_NAME_MAX + 2];
  FX_EXPECT(wb_snapshot_dlpack_versioned(s, fx_name_of_length(long_name, WB_NAME_MAX + 1), &v), WB_E_NAME_TOO_LONG);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(layout_is_the_dlpack_1_abi),
      cmocka_unit_test_setup_teardown(snapshot_exports_are_read_only, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(update_exports_are_writable, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(exports_hold_the_lease_until_their_deleter, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_versioned_exports_are_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
