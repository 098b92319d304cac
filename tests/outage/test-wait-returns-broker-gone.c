/* When the broker is killed (SIGKILL, no goodbye) and no successor adopts its segment, a reader blocked in
 * wb_topic_wait without a time limit gets WB_E_BROKER_GONE once its client's timeout_ms (here 300 ms) has
 * passed, within 1 s more, saying why; later waits fail the same way at once, so does every other call that
 * documents WB_E_BROKER_GONE, and wb_detach still cleans up. (The notify fd's side of this is
 * test-notify-fd-sleeps-through-a-broker-outage.) */
#include <pthread.h>
#include <signal.h>

#include "fixture.h"

typedef struct killer {
  fx_broker *broker;
  int delay_ms;
  int64_t killed_at_ms;
} killer;

/* Kills the broker from another thread while the main thread is blocked; only kill(2), no waitpid, so
 * that teardown still reaps it. */
static void *kill_broker_later(void *arg) {
  killer *k = arg;
  fx_sleep_ms(k->delay_ms);
  __atomic_store_n(&k->killed_at_ms, fx_now_ms(), __ATOMIC_RELEASE);
  kill(k->broker->pid, SIGKILL);
  return NULL;
}

enum { kSuccessorWaitMs = 300 };

typedef struct reader {
  wb_client *pc, *rc;
  wb_topic *pub, *t;
  wb_topic *unsealed; /* a topic of pc with no version yet: its layout may still grow */
} reader;

static void open_reader(fx_broker *b, reader *r) {
  FX_OK(fx_attach_timeout(b, "publisher", kSuccessorWaitMs, &r->pc));
  FX_OK(fx_attach_timeout(b, "reader", kSuccessorWaitMs, &r->rc));
  FX_OK(fx_create_topic(r->pc, "model", 2, 1, 16, &r->pub));
  FX_OK(fx_publish(r->pub, 1, 16, NULL));
  FX_OK(wb_topic_open(r->rc, "model", &r->t));
  FX_OK(fx_create_topic(r->pc, "unsealed", 2, 1, 16, &r->unsealed));
}

/* Every call that documents WB_E_BROKER_GONE returns it once the broker is known to be dead. */
static void everything_says_broker_gone(reader *r) {
  wb_topic *other;
  wb_update *u;
  wb_snapshot *s;
  uint64_t v;
  uint32_t n;
  int fd;
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
  spec.name = "late";
  spec.dtype = WB_DTYPE_U8;
  wb_view_spec view = WB_VIEW_SPEC_INIT;
  view.name = "view";
  view.parent = "t0";
  view.dtype = WB_DTYPE_U8;
  view.ndim = 1;
  view.shape[0] = 1;
  view.strides[0] = 1;
  FX_EXPECT(wb_topic_open(r->rc, "model", &other), WB_E_BROKER_GONE);
  FX_EXPECT(wb_topic_create(r->pc, "another", &o, &other), WB_E_BROKER_GONE);
  FX_EXPECT(wb_list_topics(r->rc, NULL, 0, &n), WB_E_BROKER_GONE);
  FX_EXPECT(wb_list_clients(r->rc, NULL, 0, &n), WB_E_BROKER_GONE);
  FX_EXPECT(wb_tensor_alloc(r->unsealed, &spec, 1), WB_E_BROKER_GONE);
  FX_EXPECT(wb_tensor_view(r->t, &view), WB_E_BROKER_GONE);
  FX_EXPECT(wb_update_begin(r->pub, 1000, &u), WB_E_BROKER_GONE);
  FX_EXPECT(wb_topic_latest(r->t, &v), WB_E_BROKER_GONE);
  FX_EXPECT(wb_topic_notify_fd(r->t, &fd), WB_E_BROKER_GONE);
  FX_EXPECT(wb_snapshot_acquire(r->t, 0, 1000, &s), WB_E_BROKER_GONE);
}

static void blocked_wait_returns_broker_gone(void **state) {
  fx_broker *b = *state;
  reader r;
  open_reader(b, &r);
  alarm(20); /* a hang would otherwise only end at the ctest timeout */
  killer k = {b, 300, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, kill_broker_later, &k), 0);
  uint64_t v = 0;
  int rc = wb_topic_wait(r.t, 1, -1, &v);
  int64_t returned_at = fx_now_ms();
  pthread_join(th, NULL);
  alarm(0);
  FX_EXPECT(rc, WB_E_BROKER_GONE);
  assert_non_null(strstr(wb_last_error(), "no successor took this client back within its timeout_ms (300 ms)"));
  int64_t after_kill = returned_at - k.killed_at_ms;
  if (after_kill >= kSuccessorWaitMs + 1000) {
    fail_msg("WB_E_BROKER_GONE came %lld ms after the broker died", (long long)after_kill);
  }

  /* A new wait on the dead broker fails as promptly, also with no time limit. */
  int64_t t0 = fx_now_ms();
  alarm(20);
  FX_EXPECT(wb_topic_wait(r.t, 1, -1, &v), WB_E_BROKER_GONE);
  alarm(0);
  assert_true(fx_now_ms() - t0 < 1000);
  everything_says_broker_gone(&r);
  FX_OK(wb_detach(r.rc)); /* safe after the broker died */
  FX_OK(wb_detach(r.pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(blocked_wait_returns_broker_gone, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
