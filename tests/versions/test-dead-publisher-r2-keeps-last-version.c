/* kill -9 of an R = 2 publisher half-way through writing version 3: the half-written version is never
 * published, readers keep acquiring version 2 with exactly its bytes, the topic is not dirty, and a new
 * publisher takes over and publishes version 3. The same when it dies inside wb_update_publish, after marking
 * its replicas but before publishing (the crash seam WB_TEST_CRASH_AT): a reader of version 2 keeps its
 * bytes while the next publisher writes, and the next version shows nothing of the dead one's. */
#include <signal.h>
#include <stdlib.h>

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

typedef struct mid_publish {
  const fx_broker *broker;
  uint32_t *published;  /* versions published before the crash */
  uint32_t *go;
} mid_publish;

/* Publishes versions 1 and 2, waits for the test, then dies inside the publish of version 3. */
static int publisher_dying_in_publish(void *arg) {
  mid_publish *m = arg;
  setenv("WB_TEST_CRASH_AT", "publish-after-replicas:3", 1);
  wb_client *c;
  wb_topic *t;
  CHILD_OK(fx_attach(m->broker, "doomed", &c));
  CHILD_OK(fx_create_topic(c, "model", 2, 2, ELEMS, &t));
  CHILD_OK(fx_publish(t, 3, ELEMS, NULL));
  CHILD_OK(fx_publish(t, 3, ELEMS, NULL));
  fx_set_word(m->published, 2);
  CHILD_CHECK(fx_wait_word(m->go, 1, 10000) == 0);
  fx_publish(t, 3, ELEMS, NULL);
  return 1; /* not reached: the seam kills the process */
}

static void publisher_killed_inside_publish_leaves_nothing_behind(void **state) {
  fx_broker *b = *state;
  uint32_t *words = fx_shared_alloc(2 * sizeof(uint32_t));
  mid_publish m = {b, &words[0], &words[1]};
  pid_t child = fx_spawn(publisher_dying_in_publish, &m);
  assert_int_equal(fx_wait_word(m.published, 2, 10000), 0);
  wb_client *c, *pc;
  wb_topic *t, *pub;
  wb_snapshot *held, *s;
  FX_OK(fx_attach(b, "reader", &c));
  FX_OK(wb_topic_open(c, "model", &t));
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &held));
  fx_set_word(m.go, 1);
  assert_int_equal(fx_wait_child(child, 10000), 128 + SIGKILL);

  uint64_t v;
  FX_OK(wb_topic_latest(t, &v));
  assert_int_equal(v, 2);
  FX_OK(fx_attach(b, "next-publisher", &pc));
  FX_OK(fx_take_over(pc, "model", 2, 2, ELEMS, &pub));
  FX_OK(fx_publish(pub, 1, ELEMS, &v)); /* version 3 again, rewriting t0 only */
  assert_int_equal(v, 3);
  assert_int_equal(fx_check_tensor(held, 0, ELEMS, 2), 0); /* the held version's replica was not reused */
  assert_int_equal(fx_check_tensor(held, 1, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(held));
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 3), 0);
  assert_int_equal(fx_check_tensor(s, 1, ELEMS, 2), 0); /* not the dead publisher's version 3 of t1 */
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(pc));
  FX_OK(wb_detach(c));
  fx_shared_free(words, 2 * sizeof(uint32_t));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(killed_publisher_leaves_last_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(publisher_killed_inside_publish_leaves_nothing_behind, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
