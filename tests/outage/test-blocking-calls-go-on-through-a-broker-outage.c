/* Blocking calls made while the broker is dead go on through the outage. wb_update_begin waits for a
 * successor (started 300 ms after the call) to take the client back, and its version reaches a reader; it
 * returns WB_E_BROKER_GONE once no successor came within the client's timeout_ms, and WB_E_TIMEOUT when its
 * own timeout ends first. wb_snapshot_acquire needs no broker: it leases the latest version meanwhile, and the
 * successor honours the lease. */
#include <pthread.h>

#include "fixture.h"

#define TENSORS 2
#define ELEMS 1024
#define ALL ((1u << TENSORS) - 1)

typedef struct pair {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} pair;

static void open_pair(fx_broker *b, uint32_t replicas, int64_t client_timeout_ms, pair *p) {
  FX_OK(fx_attach_timeout(b, "publisher", client_timeout_ms, &p->pc));
  FX_OK(fx_attach_timeout(b, "reader", client_timeout_ms, &p->rc));
  FX_OK(fx_create_topic(p->pc, "model", replicas, TENSORS, ELEMS, &p->pub));
  FX_OK(fx_publish(p->pub, ALL, ELEMS, NULL));
  FX_OK(wb_topic_open(p->rc, "model", &p->reader));
}

static void close_pair(pair *p) {
  FX_OK(wb_detach(p->rc));
  FX_OK(wb_detach(p->pc));
}

typedef struct beginner {
  wb_topic *pub;
  int rc;
  int64_t returned_at_ms;
  wb_update *update;
} beginner;

static void *begin_now(void *arg) {
  beginner *b = arg;
  b->rc = wb_update_begin(b->pub, 5000, &b->update);
  b->returned_at_ms = fx_now_ms();
  return NULL;
}

static void write_all(wb_update *u) {
  uint64_t v;
  FX_OK(wb_update_version(u, &v));
  for (uint32_t i = 0; i < TENSORS; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_tensor_at(u, i, &info));
    fx_fill_u32(info.data, ELEMS, v, i);
  }
}

/* begin runs in a thread: the successor is a child of the main thread, which outlives it (the fixture's
 * children die with the thread that started them). */
static void begin_waits_for_a_successor(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, 5000, &p);
  fx_broker_kill9(b);
  beginner call = {p.pub, -1, 0, NULL};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, begin_now, &call), 0);
  fx_sleep_ms(300);
  int64_t restarted_at = fx_now_ms();
  assert_int_equal(fx_broker_restart(b), 0);
  pthread_join(th, NULL);
  FX_OK(call.rc);
  if (call.returned_at_ms < restarted_at) fail_msg("begin returned before the successor started");
  wb_update *u = call.update;
  write_all(u);
  uint64_t v = 0;
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 2);

  FX_OK(wb_topic_wait(p.reader, 1, 5000, &v));
  assert_int_equal(v, 2);
  wb_snapshot *snap;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &snap));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(snap, i, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(snap));
  close_pair(&p);
}

static void begin_gives_up_when_no_successor_comes(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, 300, &p);
  fx_broker_kill9(b);
  wb_update *u;
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_update_begin(p.pub, 10000, &u), WB_E_BROKER_GONE);
  int64_t waited = fx_now_ms() - t0;
  assert_non_null(strstr(wb_last_error(), "no successor took this client back"));
  if (waited < 200 || waited > 2000) {
    fail_msg("begin gave up after %lld ms; the client's timeout_ms is 300", (long long)waited);
  }
  close_pair(&p);
}

static void begin_times_out_on_its_own_timeout(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, 5000, &p);
  fx_broker_kill9(b);
  wb_update *u;
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_update_begin(p.pub, 100, &u), WB_E_TIMEOUT);
  assert_true(fx_now_ms() - t0 < 2000);
  assert_non_null(strstr(wb_last_error(), "topic 'model'"));
  assert_non_null(strstr(wb_last_error(), "no successor took this client back"));
  assert_int_equal(fx_broker_restart(b), 0);
  uint64_t v = 0;
  FX_OK(fx_publish(p.pub, ALL, ELEMS, &v)); /* nothing was left half-begun */
  assert_int_equal(v, 2);
  close_pair(&p);
}

static void acquire_leases_without_the_broker(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 1, 5000, &p);
  wb_snapshot *snap;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &snap)); /* maps the tensors' storage: that takes a broker */
  assert_int_equal(fx_check_tensor(snap, 0, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(snap));
  fx_broker_kill9(b);
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &snap));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(snap, i, ELEMS, 1), 0);
  assert_int_equal(fx_broker_restart(b), 0);
  wb_update *u;
  FX_EXPECT(wb_update_begin(p.pub, 200, &u), WB_E_TIMEOUT); /* R = 1: the lease taken meanwhile holds */
  assert_non_null(strstr(wb_last_error(), "readers still hold leases"));
  FX_OK(wb_snapshot_release(snap));
  FX_OK(fx_publish(p.pub, ALL, ELEMS, NULL));
  close_pair(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(begin_waits_for_a_successor, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(begin_gives_up_when_no_successor_comes, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(begin_times_out_on_its_own_timeout, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(acquire_leases_without_the_broker, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
