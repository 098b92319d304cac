/* With R = 1 bytes are written in place, so a publisher killed half-way through an update (or an update
 * aborted after handing out a tensor) leaves the topic dirty: acquire says WB_E_DIRTY, never torn data,
 * until a new version has rewritten every touched tensor. */
#include "fixture.h"

#define ELEMS 4096

static void expect_dirty(wb_topic *t, int64_t timeout_ms) {
  wb_snapshot *s;
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_EXPECT(wb_snapshot_acquire(t, 0, timeout_ms, &s), WB_E_DIRTY);
  FX_OK(wb_topic_get_info(t, &info));
  assert_int_equal(info.dirty, 1);
}

/* A publisher child (R = 1, tensors t0..t2, version 1 published) is killed while writing t0 of version 2.
 * Returns the reader client (in *c) and its topic, dirty. */
static wb_topic *kill_publisher_mid_update(fx_broker *b, wb_client **c) {
  uint32_t *half = fx_shared_alloc(sizeof(uint32_t));
  assert_non_null(half);
  fx_doomed_publisher d = {b, 1, 3, ELEMS, 1, half};
  pid_t child = fx_spawn(fx_doomed_publisher_main, &d);
  assert_true(child > 0);
  int reached = fx_wait_word(half, 1, 10000) == 0;
  fx_shared_free(half, sizeof(uint32_t));
  if (!reached) {
    fx_kill9(child);
    fail_msg("the publisher child did not reach its half-written update (see its stderr)");
  }

  wb_topic *t;
  wb_snapshot *s;
  FX_OK(fx_attach(b, "reader", c));
  FX_OK(wb_topic_open(*c, "model", &t));
  FX_EXPECT(wb_snapshot_acquire(t, 0, 50, &s), WB_E_TIMEOUT); /* live publisher mid-update: wait for it */

  fx_kill9(child);
  /* Once the death is known the waiting acquire is told the topic is dirty (rather than timing out). */
  int64_t t0 = fx_now_ms();
  expect_dirty(t, 3000);
  if (fx_now_ms() - t0 > 2000) fail_msg("WB_E_DIRTY took %lld ms", (long long)(fx_now_ms() - t0));
  FX_EXPECT(wb_snapshot_acquire(t, 1, 0, &s), WB_E_DIRTY); /* by number too: t0 holds half of version 2 */
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(t, &latest));
  assert_int_equal(latest, 1);
  return t;
}

static void killed_publisher_marks_topic_dirty(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  wb_topic *t = kill_publisher_mid_update(b, &c);
  wb_snapshot *s;

  /* A new publisher takes over, re-running the same set-up (accepted: same names, dtypes, shapes). */
  wb_client *pc;
  wb_topic *pub;
  uint64_t v = 0;
  FX_OK(fx_attach(b, "new-publisher", &pc));
  FX_OK(fx_take_over(pc, "model", 1, 3, ELEMS, &pub));
  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(pub, &count));
  assert_int_equal(count, 3);
  /* A version that does not rewrite t0 leaves it dirty. */
  FX_OK(fx_publish(pub, 2, ELEMS, &v));
  assert_int_equal(v, 2);
  expect_dirty(t, 100);
  /* Rewriting t0 cleans it: every tensor shows the version that last wrote it. */
  FX_OK(fx_publish(pub, 1, ELEMS, &v));
  assert_int_equal(v, 3);
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, 3);
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 3), 0);
  assert_int_equal(fx_check_tensor(s, 1, ELEMS, 2), 0);
  assert_int_equal(fx_check_tensor(s, 2, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(s));
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(t, &info));
  assert_int_equal(info.dirty, 0);
  FX_OK(wb_detach(pc));
  FX_OK(wb_detach(c));
}

static void takeover_that_rewrites_everything_at_once_cleans(void **state) {
  /* The usual recovery: the new publisher writes every tensor in its first version, which carries the
   * same number (2) as the one the dead publisher never finished. */
  fx_broker *b = *state;
  wb_client *c, *pc;
  wb_topic *t = kill_publisher_mid_update(b, &c), *pub;
  wb_snapshot *s;
  uint64_t v = 0;
  FX_OK(fx_attach(b, "new-publisher", &pc));
  FX_OK(fx_take_over(pc, "model", 1, 3, ELEMS, &pub));
  FX_OK(fx_publish(pub, 7, ELEMS, &v));
  assert_int_equal(v, 2);
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  for (uint32_t i = 0; i < 3; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(pc));
  FX_OK(wb_detach(c));
}

static void aborted_update_marks_dirty_only_when_in_place(void **state) {
  fx_broker *b = *state;
  wb_client *pc, *rc;
  wb_topic *r1, *r2, *p1, *p2;
  wb_update *u;
  wb_snapshot *s;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(fx_attach(b, "publisher", &pc));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(fx_create_topic(pc, "one", 1, 2, ELEMS, &p1));
  FX_OK(fx_create_topic(pc, "two", 2, 2, ELEMS, &p2));
  FX_OK(wb_topic_open(rc, "one", &r1));
  FX_OK(wb_topic_open(rc, "two", &r2));
  FX_OK(fx_publish(p1, 3, ELEMS, NULL));
  FX_OK(fx_publish(p2, 3, ELEMS, NULL));

  /* Aborted before any tensor was handed out: nothing was touched. */
  FX_OK(wb_update_begin(p1, 1000, &u));
  FX_OK(wb_update_abort(u));
  FX_OK(wb_snapshot_acquire(r1, 0, 1000, &s));
  FX_OK(wb_snapshot_release(s));

  /* R = 2: the handed-out replica was not the published one; abort leaves version 1 readable. */
  FX_OK(wb_update_begin(p2, 1000, &u));
  FX_OK(wb_update_tensor(u, "t0", &info));
  fx_fill_u32(info.data, ELEMS / 2, 99, 0);
  FX_OK(wb_update_abort(u));
  FX_OK(wb_snapshot_acquire(r2, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(s));

  /* R = 1: the tensor may have been written in place; the next version (number 2 again, as the abort
   * published nothing) rewrites it and cleans the topic. */
  FX_OK(wb_update_begin(p1, 1000, &u));
  FX_OK(wb_update_tensor(u, "t1", &info));
  fx_fill_u32(info.data, ELEMS / 2, 99, 1);
  FX_OK(wb_update_abort(u));
  expect_dirty(r1, 100);
  FX_OK(fx_publish(p1, 2, ELEMS, NULL)); /* rewrites t1 */
  FX_OK(wb_snapshot_acquire(r1, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 1), 0);
  assert_int_equal(fx_check_tensor(s, 1, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(killed_publisher_marks_topic_dirty, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(takeover_that_rewrites_everything_at_once_cleans, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(aborted_update_marks_dirty_only_when_in_place, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
