/* Arms (wb_plan_arm, wb_armed_wait, wb_armed_release): a reader leases the version after the latest before it
 * exists; the publisher writes and publishes it all the same (R = 1 in place included), the wait copies it, and
 * from its publish on the arm pins it as any lease. An arm of a version that is already there copies it at once;
 * one of a version skipped (wb_update_set_version) moves to the version published instead; a timeout keeps the
 * arm; a topic left dirty is reported; a reader killed while armed, a detach and a release let the publisher go
 * on, and an arm holds off the topic's removal as a snapshot does. Every refusal has its code and message. Host tensors: the copies are the plan's memcpy. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "fixture.h"

#define ELEMS 256

typedef struct setup {
  wb_client *pc, *rc;
  wb_topic *pub, *sub;
  uint32_t buffers[2][ELEMS];
  wb_slice_dest dests[2];
  wb_slice_part parts[2];
  wb_plan *plan;
} setup;

/* Two tensors t0, t1 of u32[ELEMS]; the reader's plan copies each whole into a buffer of its own. */
static void open_all(fx_broker *broker, uint32_t replicas, setup *s) {
  memset(s, 0, sizeof(*s));
  FX_OK(fx_attach(broker, "publisher", &s->pc));
  FX_OK(fx_attach(broker, "reader", &s->rc));
  FX_OK(fx_create_topic(s->pc, "model", replicas, 2, ELEMS, &s->pub));
  FX_OK(fx_publish(s->pub, 3, ELEMS, NULL));
  FX_OK(wb_topic_open(s->rc, "model", &s->sub));
  for (int t = 0; t < 2; ++t) {
    wb_slice_part p = WB_SLICE_PART_INIT;
    p.name = t == 0 ? "t0" : "t1";
    p.ndim = 1;
    p.extent[0] = ELEMS;
    s->parts[t] = p;
    wb_slice_dest d = WB_SLICE_DEST_INIT;
    d.first_part = (uint32_t)t;
    d.ndim = 1;
    d.shape[0] = ELEMS;
    d.dtype = WB_DTYPE_U32;
    d.dst = s->buffers[t];
    d.dst_bytes = sizeof(s->buffers[t]);
    s->dests[t] = d;
  }
  FX_OK(wb_plan_create(s->sub, s->dests, 2, s->parts, 2, &s->plan));
}

static void close_all(setup *s) {
  wb_plan_destroy(s->plan);
  FX_OK(wb_detach(s->rc));
  FX_OK(wb_detach(s->pc));
}

/* The buffers hold version v of t0 and of t1 (t1 as of version `v1`, when only t0 changed since). */
static void expect_buffers(setup *s, uint64_t v0, uint64_t v1) {
  int64_t at = fx_check_u32(s->buffers[0], ELEMS, v0, 0);
  if (at >= 0) fail_msg("t0's buffer differs from version %llu at %lld", (unsigned long long)v0, (long long)at);
  at = fx_check_u32(s->buffers[1], ELEMS, v1, 1);
  if (at >= 0) fail_msg("t1's buffer differs from version %llu at %lld", (unsigned long long)v1, (long long)at);
}

static uint64_t armed_version(wb_armed *armed) {
  uint64_t v = 0;
  FX_OK(wb_armed_version(armed, &v));
  return v;
}

static uint64_t snapshot_version(wb_snapshot *snap) {
  uint64_t v = 0;
  FX_OK(wb_snapshot_version(snap, &v));
  return v;
}

static void expect_begin_times_out(wb_topic *pub) {
  wb_update *u;
  FX_EXPECT(wb_update_begin(pub, 100, &u), WB_E_TIMEOUT);
}

/* R = 1: the arm of version 2 keeps nothing waiting; once 2 is published it pins it like any lease. */
static void r1_arm_is_written_then_pinned(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  assert_int_equal(armed_version(armed), 2);
  FX_EXPECT(wb_armed_wait(armed, 0, &snap), WB_E_TIMEOUT);
  fx_expect_message("armed version 2 not published", "latest 1", NULL);
  assert_null(snap);
  uint64_t v;
  int64_t t0 = fx_now_ms();
  FX_OK(fx_publish(s.pub, 3, ELEMS, &v)); /* written in place under the arm: begin does not wait for it */
  assert_int_equal(v, 2);
  assert_true(fx_now_ms() - t0 < 1000);
  expect_begin_times_out(s.pub); /* version 2 is published: the arm's lease pins it */
  FX_OK(wb_armed_wait(armed, 0, &snap));
  assert_int_equal(snapshot_version(snap), 2);
  expect_buffers(&s, 2, 2);
  expect_begin_times_out(s.pub); /* the snapshot took the lease over */
  FX_OK(wb_snapshot_release(snap));
  FX_OK(fx_publish(s.pub, 1, ELEMS, &v));
  assert_int_equal(v, 3);
  /* The plan counts its arms: one made, a host arm (the wait copied), none claimed on a GPU. */
  wb_plan_info info = WB_PLAN_INFO_INIT;
  FX_OK(wb_plan_get_info(s.plan, &info));
  assert_int_equal(info.arms, 1);
  assert_int_equal(info.gpu_arms, 0);
  assert_int_equal(info.gpu_arms_claimed, 0);
  FX_OK(wb_plan_arm(s.plan, 3, NULL, &armed));
  FX_OK(wb_armed_release(armed));
  FX_OK(wb_plan_get_info(s.plan, &info));
  assert_int_equal(info.arms, 2);
  close_all(&s);
}

/* A begin kept waiting by a snapshot names the published versions leased: an arm beside it is not counted. */
static void begin_timeout_counts_published_versions_only(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_snapshot *held;
  wb_armed *armed;
  FX_OK(wb_snapshot_acquire(s.sub, 1, 1000, &held));
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  expect_begin_times_out(s.pub);
  fx_expect_message("readers still hold leases on 1 version(s) (oldest 1)", NULL);
  FX_OK(wb_snapshot_release(held));
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL));
  FX_OK(wb_armed_release(armed));
  close_all(&s);
}

typedef struct later {
  wb_topic *pub;
  int delay_ms;
  int rc;
} later;

static void *publish_later(void *arg) {
  later *l = arg;
  fx_sleep_ms(l->delay_ms);
  l->rc = fx_publish(l->pub, 1, ELEMS, NULL);
  return NULL;
}

/* A wait asleep when the version is published wakes and copies it. */
static void wait_wakes_on_publish(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  later l = {s.pub, 100, -1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, publish_later, &l), 0);
  int64_t t0 = fx_now_ms();
  int rc = wb_armed_wait(armed, 5000, &snap);
  int64_t elapsed = fx_now_ms() - t0;
  pthread_join(th, NULL);
  FX_OK(l.rc);
  FX_OK(rc);
  if (elapsed < 50 || elapsed > 2000) fail_msg("the wait returned %lld ms after a publish at 100 ms", (long long)elapsed);
  assert_int_equal(snapshot_version(snap), 2);
  expect_buffers(&s, 2, 1);
  FX_OK(wb_snapshot_release(snap));
  close_all(&s);
}

/* A version newer than `after` that is there already is the one armed, and copied at once. */
static void arm_of_a_published_version_copies_it_at_once(void **state) {
  setup s;
  open_all(*state, 2, &s);
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL));
  wb_armed *armed;
  wb_snapshot *snap;
  for (uint64_t after = 0; after < 2; ++after) {
    memset(s.buffers, 0, sizeof(s.buffers));
    FX_OK(wb_plan_arm(s.plan, after, NULL, &armed));
    assert_int_equal(armed_version(armed), 2);
    FX_OK(wb_armed_wait(armed, 0, &snap));
    assert_int_equal(snapshot_version(snap), 2);
    expect_buffers(&s, 2, 2);
    FX_OK(wb_snapshot_release(snap));
  }
  close_all(&s);
}

/* R = 1 while an update writes version 2: the latest (1) cannot be read, so the arm is of 2. */
static void r1_arm_during_an_update_is_of_the_version_written(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_update *u;
  FX_OK(wb_update_begin(s.pub, 1000, &u));
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 0, NULL, &armed));
  assert_int_equal(armed_version(armed), 2);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor(u, "t1", &info));
  fx_fill_u32(info.data, ELEMS, 2, 1);
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  FX_OK(wb_armed_wait(armed, 1000, &snap));
  assert_int_equal(snapshot_version(snap), 2);
  expect_buffers(&s, 1, 2);
  FX_OK(wb_snapshot_release(snap));
  close_all(&s);
}

/* The publisher goes past the armed version (wb_update_set_version): the wait copies the one published. */
static void skipped_version_moves_the_arm(fx_broker *broker, uint32_t replicas) {
  setup s;
  open_all(broker, replicas, &s);
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  assert_int_equal(armed_version(armed), 2);
  wb_update *u;
  FX_OK(wb_update_begin(s.pub, 1000, &u));
  FX_OK(wb_update_set_version(u, 7));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor(u, "t0", &info));
  fx_fill_u32(info.data, ELEMS, 7, 0);
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  FX_OK(wb_armed_wait(armed, 1000, &snap));
  assert_int_equal(snapshot_version(snap), 7);
  expect_buffers(&s, 7, 1);
  FX_OK(wb_snapshot_release(snap));
  uint64_t v;
  FX_OK(fx_publish(s.pub, 3, ELEMS, &v)); /* nothing left pinned */
  assert_int_equal(v, 8);
  close_all(&s);
}

static void r1_skipped_version_moves_the_arm(void **state) { skipped_version_moves_the_arm(*state, 1); }
static void r2_skipped_version_moves_the_arm(void **state) { skipped_version_moves_the_arm(*state, 2); }

/* A timed-out wait keeps the arm; a release withdraws it, and the published version is no longer pinned. */
static void timeout_keeps_the_arm_and_release_withdraws_it(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_armed_wait(armed, 100, &snap), WB_E_TIMEOUT);
  int64_t elapsed = fx_now_ms() - t0;
  if (elapsed < 95 || elapsed > 1500) fail_msg("wait(timeout 100 ms) returned after %lld ms", (long long)elapsed);
  assert_int_equal(armed_version(armed), 2);
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL));
  expect_begin_times_out(s.pub);
  FX_OK(wb_armed_release(armed));
  FX_OK(wb_armed_release(NULL));
  uint64_t v;
  FX_OK(fx_publish(s.pub, 3, ELEMS, &v));
  assert_int_equal(v, 3);
  for (int t = 0; t < 2; ++t) {
    for (int i = 0; i < ELEMS; ++i) {
      if (s.buffers[t][i] != 0) fail_msg("a withdrawn arm copied into buffer %d at %d", t, i);
    }
  }
  close_all(&s);
}

/* R = 2: the arm pins its version's replica once it is older than the latest, as any lease. */
static void r2_arm_pins_its_replica_once_older(void **state) {
  setup s;
  open_all(*state, 2, &s);
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL)); /* 2 */
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL)); /* 3: into the other replica */
  expect_begin_times_out(s.pub);            /* 4 would overwrite 2's replica */
  FX_OK(wb_armed_wait(armed, 0, &snap));
  assert_int_equal(snapshot_version(snap), 2);
  expect_buffers(&s, 2, 2);
  FX_OK(wb_snapshot_release(snap));
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL));
  close_all(&s);
}

/* R = 1, a publisher aborts after writing t0 in place: the arm waits for the next version; if that one leaves
 * t0 half-written, the wait says so (WB_E_DIRTY); the next arm waits for the version that mends it. */
static void r1_dirty_topic_is_reported_then_mended(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed;
  wb_snapshot *snap;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  wb_update *u;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_begin(s.pub, 1000, &u));
  FX_OK(wb_update_tensor(u, "t0", &info));
  FX_OK(wb_update_abort(u));
  FX_EXPECT(wb_armed_wait(armed, 0, &snap), WB_E_TIMEOUT);
  FX_OK(fx_publish(s.pub, 2, ELEMS, NULL)); /* version 2 writes t1 only: t0 stays half-written */
  FX_EXPECT(wb_armed_wait(armed, 0, &snap), WB_E_DIRTY);
  fx_expect_message("half-written", NULL);
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed)); /* 2 is dirty: the arm is of 3 */
  assert_int_equal(armed_version(armed), 3);
  FX_OK(fx_publish(s.pub, 1, ELEMS, NULL));
  FX_OK(wb_armed_wait(armed, 0, &snap));
  assert_int_equal(snapshot_version(snap), 3);
  expect_buffers(&s, 3, 2);
  FX_OK(wb_snapshot_release(snap));
  close_all(&s);
}

typedef struct armed_child {
  const fx_broker *broker;
  uint32_t *armed; /* fx_shared_alloc */
} armed_child;

static int armed_child_main(void *arg) {
  armed_child *a = arg;
  wb_client *c;
  wb_topic *t;
  wb_armed *armed;
  uint32_t buffer[ELEMS];
  wb_slice_part p = WB_SLICE_PART_INIT;
  p.name = "t0";
  p.ndim = 1;
  p.extent[0] = ELEMS;
  wb_slice_dest d = WB_SLICE_DEST_INIT;
  d.ndim = 1;
  d.shape[0] = ELEMS;
  d.dtype = WB_DTYPE_U32;
  d.dst = buffer;
  d.dst_bytes = sizeof(buffer);
  wb_plan *plan;
  CHILD_OK(fx_attach(a->broker, "armed-reader", &c));
  CHILD_OK(wb_topic_open(c, "model", &t));
  CHILD_OK(wb_plan_create(t, &d, 1, &p, 1, &plan));
  CHILD_OK(wb_plan_arm(plan, 1, NULL, &armed));
  fx_set_word(a->armed, 1);
  for (;;) pause();
}

/* A reader killed while armed: the version it armed is published all the same, and once the broker has
 * reclaimed the dead reader's lease the publisher goes on. */
static void killed_armed_reader_frees_the_publisher(void **state) {
  setup s;
  open_all(*state, 1, &s);
  armed_child a = {*state, fx_shared_alloc(sizeof(uint32_t))};
  pid_t child = fx_spawn(armed_child_main, &a);
  assert_int_equal(fx_wait_word(a.armed, 1, 5000), 0);
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL)); /* 2, under the child's arm */
  expect_begin_times_out(s.pub);
  fx_kill9(child);
  fx_wait_child(child, 5000);
  wb_update *u;
  FX_OK(wb_update_begin(s.pub, 5000, &u));
  FX_OK(wb_update_abort(u));
  fx_shared_free(a.armed, sizeof(uint32_t));
  close_all(&s);
}

/* wb_detach withdraws the arms still held; wb_topic_close refuses while one is. */
static void close_refuses_and_detach_withdraws(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  FX_EXPECT(wb_topic_close(s.sub), WB_E_STATE);
  fx_expect_message("1 arms of this topic are still held", "wb_plan_arm", NULL);
  FX_OK(fx_publish(s.pub, 3, ELEMS, NULL));
  wb_plan_destroy(s.plan);
  FX_OK(wb_detach(s.rc));
  uint64_t v;
  FX_OK(fx_publish(s.pub, 3, ELEMS, &v));
  assert_int_equal(v, 3);
  FX_OK(wb_detach(s.pc));
}

/* The arm's lease keeps the topic from being removed, as a snapshot's does; once it is released the topic goes,
 * and arming a plan of it is refused. */
static void arm_holds_off_removal(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed;
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  FX_OK(wb_topic_close(s.pub));
  FX_EXPECT(wb_topic_remove(s.pc, "model"), WB_E_BUSY);
  FX_OK(wb_armed_release(armed));
  FX_OK(wb_topic_remove(s.pc, "model"));
  FX_EXPECT(wb_plan_arm(s.plan, 1, NULL, &armed), WB_E_NOT_FOUND);
  fx_expect_message("was removed", NULL);
  wb_plan_destroy(s.plan);
  FX_OK(wb_topic_close(s.sub));
  FX_OK(wb_detach(s.rc));
  FX_OK(wb_detach(s.pc));
}

static void refusals(void **state) {
  setup s;
  open_all(*state, 1, &s);
  wb_armed *armed = NULL;
  wb_snapshot *snap;
  uint64_t v;
  FX_EXPECT(wb_plan_arm(NULL, 0, NULL, &armed), WB_E_INVAL);
  FX_EXPECT(wb_plan_arm(s.plan, 0, NULL, NULL), WB_E_INVAL);
  FX_EXPECT(wb_plan_arm(s.plan, 2, NULL, &armed), WB_E_INVAL);
  fx_expect_message("after=2 is beyond its latest version, 1", NULL);
  assert_null(armed);
  FX_EXPECT(wb_armed_wait(NULL, 0, &snap), WB_E_INVAL);
  FX_EXPECT(wb_armed_version(NULL, &v), WB_E_INVAL);
  FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
  FX_EXPECT(wb_armed_wait(armed, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_armed_version(armed, NULL), WB_E_INVAL);
  int on_stream = -1;
  FX_EXPECT(wb_armed_on_stream(NULL, &on_stream), WB_E_INVAL);
  FX_EXPECT(wb_armed_on_stream(armed, NULL), WB_E_INVAL);
  FX_OK(wb_armed_on_stream(armed, &on_stream));
  assert_int_equal(on_stream, 0); /* a host plan: wb_armed_wait copies */
  FX_OK(wb_armed_release(armed));
  /* $WEIGHTBUS_GPU_ARMS is read by every arm: a setting that is not on, off or a hold in milliseconds is refused
   * (a host plan is armed the same way under any good one). */
  const char *bad[] = {"yes", "ON", "0", "-5", "12ms", " 5", "3600001", "99999999999999999999"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    setenv("WEIGHTBUS_GPU_ARMS", bad[i], 1);
    FX_EXPECT(wb_plan_arm(s.plan, 1, NULL, &armed), WB_E_INVAL);
    fx_expect_message("WEIGHTBUS_GPU_ARMS=", "give on, off, or how long a GPU arm may hold its stream", NULL);
    assert_null(armed);
  }
  const char *good[] = {"on", "off", "", "1", "250", "3600000"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); ++i) {
    setenv("WEIGHTBUS_GPU_ARMS", good[i], 1);
    FX_OK(wb_plan_arm(s.plan, 1, NULL, &armed));
    FX_OK(wb_armed_on_stream(armed, &on_stream));
    assert_int_equal(on_stream, 0);
    FX_OK(wb_armed_release(armed));
  }
  unsetenv("WEIGHTBUS_GPU_ARMS");
  /* Every lease slot held by arms: the next one is refused, naming the broker's flag. */
  wb_armed *all[4096];
  int held = 0, rc;
  while ((rc = wb_plan_arm(s.plan, 1, NULL, &all[held])) == WB_OK && held < 4095) held++;
  assert_int_equal(rc, WB_E_NOSPC);
  fx_expect_message("--leases-per-client", NULL);
  while (held > 0) FX_OK(wb_armed_release(all[--held]));
  close_all(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(r1_arm_is_written_then_pinned, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(begin_timeout_counts_published_versions_only, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(wait_wakes_on_publish, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(arm_of_a_published_version_copies_it_at_once, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r1_arm_during_an_update_is_of_the_version_written, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r1_skipped_version_moves_the_arm, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r2_skipped_version_moves_the_arm, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(timeout_keeps_the_arm_and_release_withdraws_it, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r2_arm_pins_its_replica_once_older, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r1_dirty_topic_is_reported_then_mended, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(killed_armed_reader_frees_the_publisher, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(close_refuses_and_detach_withdraws, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(arm_holds_off_removal, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(refusals, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
