/* kill -9 of an R = 2 publisher half-way through writing version 3: the half-written version is never
 * published, readers keep acquiring version 2 with exactly its bytes, the topic is not dirty, and a new
 * publisher takes over and publishes version 3. */
#include "fixture.h"

#define ELEMS 4096

static void killed_publisher_leaves_last_version(void **state) {
  fx_broker *b = *state;
  uint32_t *half = fx_shared_alloc(sizeof(uint32_t));
  assert_non_null(half);
  fx_doomed_publisher d = {b, 2, 2, ELEMS, 2, half};
  pid_t child = fx_spawn(fx_doomed_publisher_main, &d);
  assert_true(child > 0);
  if (fx_wait_word(half, 1, 10000) != 0) {
    fx_kill9(child);
    fail_msg("the publisher child did not reach its half-written update (see its stderr)");
  }

  wb_client *c;
  wb_topic *t;
  wb_snapshot *s;
  uint64_t v = 0;
  FX_OK(fx_attach(b, "reader", &c));
  FX_OK(wb_topic_open(c, "model", &t));
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s)); /* R = 2: the open update does not hold readers back */
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, 2);
  FX_OK(wb_snapshot_release(s));

  fx_kill9(child);
  /* Straight away, before or after the broker noticed: the last published version, intact. */
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, 2);
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 2), 0);
  assert_int_equal(fx_check_tensor(s, 1, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_topic_latest(t, &v));
  assert_int_equal(v, 2);
  FX_EXPECT(wb_snapshot_acquire(t, 3, 0, &s), WB_E_NOT_FOUND); /* never published */

  /* A new publisher takes over once the broker has seen the death; the next version is 3. */
  wb_client *pc;
  wb_topic *pub;
  FX_OK(fx_attach(b, "new-publisher", &pc));
  FX_OK(fx_take_over(pc, "model", 2, 2, ELEMS, &pub));
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(t, &info));
  assert_int_equal(info.dirty, 0);
  assert_int_equal(info.latest, 2);
  assert_int_equal(info.publisher_pid, (uint32_t)getpid());
  FX_OK(fx_publish(pub, 1, ELEMS, &v));
  assert_int_equal(v, 3);
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 3), 0);
  assert_int_equal(fx_check_tensor(s, 1, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(pc));
  FX_OK(wb_detach(c));
  fx_shared_free(half, sizeof(uint32_t));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(killed_publisher_leaves_last_version, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
