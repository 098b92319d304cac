/* wb_topic_wait returns at once when a version newer than `after` exists, blocks until a publish otherwise,
 * times out with WB_E_TIMEOUT (timeout 0 polls) and is not cut short by signals; the notify fd becomes
 * readable after a publish, wb_topic_notify_ack makes it quiet again and returns the latest version, and ack
 * before the topic has a notify fd is WB_E_STATE. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include "fixture.h"

typedef struct topic_pair {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} topic_pair;

static void open_pair(fx_broker *b, topic_pair *p) {
  FX_OK(fx_attach(b, "publisher", &p->pc));
  FX_OK(fx_attach(b, "reader", &p->rc));
  FX_OK(fx_create_topic(p->pc, "model", 2, 1, 16, &p->pub));
  FX_OK(wb_topic_open(p->rc, "model", &p->reader));
}

static void close_pair(topic_pair *p) {
  FX_OK(wb_detach(p->rc));
  FX_OK(wb_detach(p->pc));
}

static void returns_at_once_when_newer_exists(void **state) {
  topic_pair p;
  open_pair(*state, &p);
  FX_OK(fx_publish(p.pub, 1, 16, NULL));
  FX_OK(fx_publish(p.pub, 1, 16, NULL));
  uint64_t v = 0;
  int64_t t0 = fx_now_ms();
  FX_OK(wb_topic_wait(p.reader, 0, 5000, &v));
  assert_int_equal(v, 2); /* the latest, skipping 1 */
  FX_OK(wb_topic_wait(p.reader, 1, 5000, &v));
  assert_int_equal(v, 2);
  FX_OK(wb_topic_wait(p.reader, 1, 0, &v)); /* timeout 0 still sees it */
  assert_int_equal(v, 2);
  assert_true(fx_now_ms() - t0 < 500);
  close_pair(&p);
}

static void times_out_when_nothing_new(void **state) {
  topic_pair p;
  open_pair(*state, &p);
  uint64_t v = 0;
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_topic_wait(p.reader, 0, 0, &v), WB_E_TIMEOUT); /* before any publish */
  assert_true(fx_now_ms() - t0 < 100);
  FX_OK(fx_publish(p.pub, 1, 16, NULL));
  t0 = fx_now_ms();
  FX_EXPECT(wb_topic_wait(p.reader, 1, 0, &v), WB_E_TIMEOUT);
  assert_true(fx_now_ms() - t0 < 100);
  t0 = fx_now_ms();
  FX_EXPECT(wb_topic_wait(p.reader, 1, 50, &v), WB_E_TIMEOUT);
  int64_t elapsed = fx_now_ms() - t0;
  if (elapsed < 45 || elapsed > 1000) fail_msg("wait with timeout 50 ms returned after %lld ms", (long long)elapsed);
  close_pair(&p);
}

typedef struct delayed_publish {
  wb_topic *pub;
  int delay_ms;
  int rc;
} delayed_publish;

static void *publish_later(void *arg) {
  delayed_publish *d = arg;
  fx_sleep_ms(d->delay_ms);
  d->rc = fx_publish(d->pub, 1, 16, NULL);
  return NULL;
}

static void blocked_wait_wakes_on_publish(void **state) {
  topic_pair p;
  open_pair(*state, &p);
  FX_OK(fx_publish(p.pub, 1, 16, NULL));
  delayed_publish d = {p.pub, 100, -1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, publish_later, &d), 0);
  uint64_t v = 0;
  int64_t t0 = fx_now_ms();
  int rc = wb_topic_wait(p.reader, 1, -1, &v); /* no limit: only the publish ends it */
  int64_t elapsed = fx_now_ms() - t0;
  pthread_join(th, NULL);
  FX_OK(d.rc);
  FX_OK(rc);
  assert_int_equal(v, 2);
  if (elapsed < 80 || elapsed > 2000) fail_msg("wait returned after %lld ms for a publish at 100 ms", (long long)elapsed);
  close_pair(&p);
}

static void on_alarm(int sig) { (void)sig; }

static void signals_do_not_cut_the_wait_short(void **state) {
  topic_pair p;
  open_pair(*state, &p);
  /* SIGALRM every 20 ms, without SA_RESTART: the wait sees EINTR and must go on with the remaining time. */
  struct sigaction sa, old;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, &old);
  struct itimerval every = {{0, 20000}, {0, 20000}}, stop = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &every, NULL);
  uint64_t v = 0;
  int64_t t0 = fx_now_ms();
  int rc = wb_topic_wait(p.reader, 0, 300, &v);
  int64_t elapsed = fx_now_ms() - t0;
  setitimer(ITIMER_REAL, &stop, NULL);
  sigaction(SIGALRM, &old, NULL);
  FX_EXPECT(rc, WB_E_TIMEOUT);
  if (elapsed < 290 || elapsed > 2000) fail_msg("wait(300 ms) under signals returned after %lld ms", (long long)elapsed);
  close_pair(&p);
}

static void notify_fd_becomes_readable_on_publish(void **state) {
  topic_pair p;
  open_pair(*state, &p);
  int fd = -1, again = -1;
  uint64_t latest = 0;
  FX_EXPECT(wb_topic_notify_ack(p.reader, &latest), WB_E_STATE);
  assert_non_null(strstr(wb_last_error(), "call wb_topic_notify_fd first"));
  FX_OK(wb_topic_notify_fd(p.reader, &fd));
  assert_true(fd >= 0);
  FX_OK(wb_topic_notify_fd(p.reader, &again));
  assert_int_equal(again, fd); /* the fd belongs to the handle: one per handle */
  struct pollfd pfd = {fd, POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, 50), 0); /* nothing published: not readable */

  for (uint64_t want = 1; want <= 3; ++want) {
    FX_OK(fx_publish(p.pub, 1, 16, NULL));
    pfd.revents = 0;
    int64_t t0 = fx_now_ms();
    int n = poll(&pfd, 1, 2000);
    if (n != 1 || !(pfd.revents & POLLIN)) {
      fail_msg("notify fd not readable within %lld ms of publishing version %llu", (long long)(fx_now_ms() - t0),
               (unsigned long long)want);
    }
    FX_OK(wb_topic_notify_ack(p.reader, &latest));
    assert_int_equal(latest, want);
    assert_int_equal(poll(&pfd, 1, 0), 0); /* acknowledged: quiet until the next publish */
  }
  close_pair(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(returns_at_once_when_newer_exists, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(times_out_when_nothing_new, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(blocked_wait_wakes_on_publish, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(signals_do_not_cut_the_wait_short, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(notify_fd_becomes_readable_on_publish, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
