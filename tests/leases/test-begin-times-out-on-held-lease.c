/* wb_update_begin waits for leases as documented and never longer than its timeout: with R = 1 any lease
 * blocks it (WB_E_TIMEOUT, nothing changed) and a release wakes it; with R >= 2 it waits only while readers
 * pin more versions older than the latest than there are spare replicas (R - 2). And with R = 1, while an
 * update is open, acquiring the latest waits for its publish. */
#include <pthread.h>

#include "fixture.h"

#define ELEMS 256

typedef struct setup {
  wb_client *pc, *r1, *r2;
  wb_topic *pub, *a, *b; /* a, b: two readers */
} setup;

static void open_all(fx_broker *broker, uint32_t replicas, setup *s) {
  FX_OK(fx_attach(broker, "publisher", &s->pc));
  FX_OK(fx_attach(broker, "reader-a", &s->r1));
  FX_OK(fx_attach(broker, "reader-b", &s->r2));
  FX_OK(fx_create_topic(s->pc, "model", replicas, 2, ELEMS, &s->pub));
  FX_OK(wb_topic_open(s->r1, "model", &s->a));
  FX_OK(wb_topic_open(s->r2, "model", &s->b));
}

static void close_all(setup *s) {
  FX_OK(wb_detach(s->r2));
  FX_OK(wb_detach(s->r1));
  FX_OK(wb_detach(s->pc));
}

/* begin must give up with WB_E_TIMEOUT after about timeout_ms. */
static void expect_begin_times_out(wb_topic *pub, int64_t timeout_ms) {
  wb_update *u = NULL;
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_update_begin(pub, timeout_ms, &u), WB_E_TIMEOUT);
  int64_t elapsed = fx_now_ms() - t0;
  if (elapsed < timeout_ms - 5 || elapsed > timeout_ms + 1000) {
    fail_msg("wb_update_begin(timeout %lld ms) gave up after %lld ms", (long long)timeout_ms, (long long)elapsed);
  }
}

static void begin_publish(wb_topic *pub, uint64_t want) {
  uint64_t v = 0;
  FX_OK(fx_publish(pub, 3, ELEMS, &v));
  assert_int_equal(v, want);
}

static void r1_lease_makes_begin_time_out(void **state) {
  setup s;
  open_all(*state, 1, &s);
  begin_publish(s.pub, 1);
  wb_snapshot *snap;
  FX_OK(wb_snapshot_acquire(s.a, 0, 1000, &snap));
  expect_begin_times_out(s.pub, 0);
  expect_begin_times_out(s.pub, 100);
  /* Nothing changed: same version, same bytes, and the next begin still gets version 2. */
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(s.b, &latest));
  assert_int_equal(latest, 1);
  assert_int_equal(fx_check_tensor(snap, 0, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(snap));
  wb_update *u;
  uint64_t v = 0;
  int64_t t0 = fx_now_ms();
  FX_OK(wb_update_begin(s.pub, 1000, &u));
  assert_true(fx_now_ms() - t0 < 500);
  FX_OK(wb_update_version(u, &v));
  assert_int_equal(v, 2);
  FX_OK(wb_update_abort(u));
  close_all(&s);
}

typedef struct late_release {
  wb_snapshot *snap;
  int delay_ms;
  int rc;
} late_release;

static void *release_later(void *arg) {
  late_release *l = arg;
  fx_sleep_ms(l->delay_ms);
  l->rc = wb_snapshot_release(l->snap);
  return NULL;
}

static void r1_release_wakes_waiting_begin(void **state) {
  setup s;
  open_all(*state, 1, &s);
  begin_publish(s.pub, 1);
  late_release l = {NULL, 150, -1};
  FX_OK(wb_snapshot_acquire(s.a, 0, 1000, &l.snap));
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, release_later, &l), 0);
  wb_update *u;
  int64_t t0 = fx_now_ms();
  int rc = wb_update_begin(s.pub, 5000, &u);
  int64_t elapsed = fx_now_ms() - t0;
  pthread_join(th, NULL);
  FX_OK(l.rc);
  FX_OK(rc);
  if (elapsed < 100 || elapsed > 2000) fail_msg("begin returned %lld ms after a release at 150 ms", (long long)elapsed);
  FX_OK(wb_update_abort(u));
  close_all(&s);
}

static void r1_open_update_holds_back_acquire(void **state) {
  setup s;
  open_all(*state, 1, &s);
  begin_publish(s.pub, 1);
  wb_update *u;
  wb_snapshot *snap;
  FX_OK(wb_update_begin(s.pub, 1000, &u));
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_snapshot_acquire(s.a, 0, 50, &snap), WB_E_TIMEOUT); /* the bytes may be changing in place */
  int64_t elapsed = fx_now_ms() - t0;
  if (elapsed < 45 || elapsed > 1000) fail_msg("acquire(timeout 50 ms) returned after %lld ms", (long long)elapsed);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor(u, "t0", &info));
  fx_fill_u32(info.data, ELEMS, 2, 0);
  uint64_t v;
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  FX_OK(wb_snapshot_acquire(s.a, 0, 1000, &snap));
  FX_OK(wb_snapshot_version(snap, &v));
  assert_int_equal(v, 2);
  assert_int_equal(fx_check_tensor(snap, 0, ELEMS, 2), 0);
  assert_int_equal(fx_check_tensor(snap, 1, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(snap));
  close_all(&s);
}

static void r2_lease_on_latest_does_not_block(void **state) {
  setup s;
  open_all(*state, 2, &s);
  begin_publish(s.pub, 1);
  wb_snapshot *snap;
  FX_OK(wb_snapshot_acquire(s.a, 0, 1000, &snap));
  begin_publish(s.pub, 2); /* written into the other replica while v1 is read */
  assert_int_equal(fx_check_tensor(snap, 0, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(snap));
  close_all(&s);
}

static void r2_two_readers_on_two_versions_block(void **state) {
  setup s;
  open_all(*state, 2, &s);
  wb_snapshot *old, *newer;
  begin_publish(s.pub, 1);
  FX_OK(wb_snapshot_acquire(s.a, 0, 1000, &old));
  begin_publish(s.pub, 2);
  FX_OK(wb_snapshot_acquire(s.b, 0, 1000, &newer));
  /* Both replicas are pinned (v1 older than the latest, 0 spare): the update cannot start. */
  expect_begin_times_out(s.pub, 100);
  assert_int_equal(fx_check_tensor(old, 0, ELEMS, 1), 0);
  assert_int_equal(fx_check_tensor(newer, 0, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(old));
  begin_publish(s.pub, 3);
  assert_int_equal(fx_check_tensor(newer, 1, ELEMS, 2), 0); /* v2 untouched by v3 */
  FX_OK(wb_snapshot_release(newer));
  close_all(&s);
}

static void r3_spare_replica_allows_one_old_version(void **state) {
  setup s;
  open_all(*state, 3, &s);
  wb_snapshot *v1, *v2;
  begin_publish(s.pub, 1);
  FX_OK(wb_snapshot_acquire(s.a, 0, 1000, &v1));
  begin_publish(s.pub, 2);
  begin_publish(s.pub, 3); /* one old version (v1) pinned, one spare replica: no wait */
  FX_OK(wb_snapshot_acquire(s.b, 2, 1000, &v2));
  /* Now v1 and v2 are pinned besides the latest v3: two old versions, one spare. */
  expect_begin_times_out(s.pub, 100);
  assert_int_equal(fx_check_tensor(v1, 0, ELEMS, 1), 0);
  assert_int_equal(fx_check_tensor(v2, 0, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(v1));
  begin_publish(s.pub, 4);
  assert_int_equal(fx_check_tensor(v2, 1, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(v2));
  close_all(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(r1_lease_makes_begin_time_out, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r1_release_wakes_waiting_begin, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r1_open_update_holds_back_acquire, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r2_lease_on_latest_does_not_block, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r2_two_readers_on_two_versions_block, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r3_spare_replica_allows_one_old_version, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
