/* A DLPack export pins its snapshot's version: after wb_snapshot_release the lease lives on until the last
 * deleter, the topic counts the snapshot as held, and wb_detach drops the lease while leaving the deleters
 * safe to call. */
#include <dlpack/dlpack.h>

#include "fixture.h"

#define ELEMS 64

typedef struct pinned {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} pinned;

/* R = 1, so that any lease on the latest version blocks the next begin. */
static void setup_pinned(fx_broker *b, pinned *p) {
  FX_OK(fx_attach(b, "publisher", &p->pc));
  FX_OK(fx_attach(b, "reader", &p->rc));
  FX_OK(fx_create_topic(p->pc, "model", 1, 1, ELEMS, &p->pub));
  FX_OK(fx_publish(p->pub, 1, ELEMS, NULL));
  FX_OK(wb_topic_open(p->rc, "model", &p->reader));
}

static int begin_and_abort(wb_topic *pub, int64_t timeout_ms) {
  wb_update *u;
  int rc = wb_update_begin(pub, timeout_ms, &u);
  if (rc == WB_OK) wb_update_abort(u);
  return rc;
}

static void export_outlives_release(void **state) {
  pinned p;
  setup_pinned(*state, &p);
  wb_snapshot *s;
  DLManagedTensor *a, *b;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  FX_OK(wb_snapshot_dlpack(s, "t0", &a));
  FX_OK(wb_snapshot_dlpack(s, "t0", &b));
  FX_OK(wb_snapshot_release(s));
  assert_int_equal(fx_check_u32(a->dl_tensor.data, ELEMS, 1, 0), -1); /* still version 1's bytes */
  FX_EXPECT(begin_and_abort(p.pub, 50), WB_E_TIMEOUT);
  FX_EXPECT(wb_topic_close(p.reader), WB_E_STATE);
  a->deleter(a);
  FX_EXPECT(begin_and_abort(p.pub, 50), WB_E_TIMEOUT); /* b still pins it */
  b->deleter(b);
  FX_OK(begin_and_abort(p.pub, 1000));
  FX_OK(wb_topic_close(p.reader));
  FX_OK(wb_detach(p.rc));
  FX_OK(wb_detach(p.pc));
}

static void deleters_before_release_keep_the_handle(void **state) {
  pinned p;
  setup_pinned(*state, &p);
  wb_snapshot *s;
  DLManagedTensor *a;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  FX_OK(wb_snapshot_dlpack(s, "t0", &a));
  a->deleter(a);
  uint64_t v;
  FX_OK(wb_snapshot_version(s, &v)); /* the handle is still the caller's */
  assert_int_equal(v, 1);
  FX_EXPECT(begin_and_abort(p.pub, 50), WB_E_TIMEOUT);
  FX_OK(wb_snapshot_release(s));
  FX_OK(begin_and_abort(p.pub, 1000));
  FX_OK(wb_detach(p.rc));
  FX_OK(wb_detach(p.pc));
}

static void detach_drops_the_lease_of_live_exports(void **state) {
  pinned p;
  setup_pinned(*state, &p);
  wb_snapshot *s, *released;
  DLManagedTensor *held, *orphan;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &released));
  FX_OK(wb_snapshot_dlpack(s, "t0", &held));
  FX_OK(wb_snapshot_dlpack(released, "t0", &orphan));
  FX_OK(wb_snapshot_release(released));
  FX_OK(wb_detach(p.rc)); /* s is still open: detach releases it */
  FX_OK(begin_and_abort(p.pub, 1000));
  held->deleter(held); /* safe after detach (ASan checks) */
  orphan->deleter(orphan);
  FX_OK(wb_detach(p.pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(export_outlives_release, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(deleters_before_release_keep_the_handle, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(detach_drops_the_lease_of_live_exports, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
