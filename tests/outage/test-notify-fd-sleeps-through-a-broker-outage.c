/* The notify fd is not readable while there is nothing to do: a poll loop on it (wb_topic_notify_fd, then
 * wb_topic_notify_ack each time it is readable) wakes at most 10 times in a 1 s broker outage, keeps the same
 * fd, and sees the next version once a successor runs and the publisher publishes; with no successor it
 * becomes readable when the client's timeout_ms from the death has passed, and at once when the broker exits
 * cleanly (its segment is removed), and ack then says WB_E_BROKER_GONE, saying why. */
#include <poll.h>
#include <signal.h>

#include "fixture.h"

typedef struct pair {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  int fd;
} pair;

/* Version 1 is published, and the reader holds the notify fd. */
static void open_pair(fx_broker *b, int64_t client_timeout_ms, pair *p) {
  FX_OK(fx_attach_timeout(b, "publisher", client_timeout_ms, &p->pc));
  FX_OK(fx_attach_timeout(b, "reader", client_timeout_ms, &p->rc));
  FX_OK(fx_create_topic(p->pc, "model", 2, 1, 16, &p->pub));
  FX_OK(fx_publish(p->pub, 1, 16, NULL));
  FX_OK(wb_topic_open(p->rc, "model", &p->reader));
  FX_OK(wb_topic_notify_fd(p->reader, &p->fd));
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(p->reader, &latest));
  assert_int_equal(latest, 1);
}

static void close_pair(pair *p) {
  FX_OK(wb_detach(p->rc));
  FX_OK(wb_detach(p->pc));
}

/* The loop of weightbus.h until `until_ms` (fx_now_ms), ack's first failure, or a version of at least `want`
 * (0: none ends it). Counts the wake-ups; returns ack's last result. */
typedef struct loop {
  int wakeups;
  uint64_t latest;
} loop;

static int run_loop(pair *p, int64_t until_ms, uint64_t want, loop *l) {
  int rc = WB_OK;
  while (fx_now_ms() < until_ms && (want == 0 || l->latest < want)) {
    struct pollfd pfd = {p->fd, POLLIN, 0};
    if (poll(&pfd, 1, (int)(until_ms - fx_now_ms())) != 1) continue;
    ++l->wakeups;
    if ((rc = wb_topic_notify_ack(p->reader, &l->latest)) != WB_OK) return rc;
  }
  return rc;
}

static void an_outage_costs_few_wakeups(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 5000, &p);
  fx_broker_kill9(b);
  loop outage = {0, 0};
  FX_OK(run_loop(&p, fx_now_ms() + 1000, 0, &outage));
  if (outage.wakeups > 10) fail_msg("the notify fd woke its loop %d times in a 1 s outage", outage.wakeups);
  if (outage.wakeups > 0) assert_int_equal(outage.latest, 1); /* ack answers meanwhile, from shared memory */

  assert_int_equal(fx_broker_restart(b), 0);
  FX_OK(fx_publish(p.pub, 1, 16, NULL));
  loop after = {0, 0};
  FX_OK(run_loop(&p, fx_now_ms() + 5000, 2, &after));
  assert_int_equal(after.latest, 2);
  int again = -1;
  FX_OK(wb_topic_notify_fd(p.reader, &again));
  assert_int_equal(again, p.fd); /* one fd for the handle's lifetime */
  FX_OK(fx_publish(p.pub, 1, 16, NULL)); /* subscribed with the successor */
  FX_OK(run_loop(&p, fx_now_ms() + 2000, 3, &after));
  assert_int_equal(after.latest, 3);
  close_pair(&p);
}

static void no_successor_ends_the_loop_with_broker_gone(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 300, &p);
  int64_t killed_at = fx_now_ms();
  fx_broker_kill9(b);
  loop l = {0, 0};
  FX_EXPECT(run_loop(&p, fx_now_ms() + 3000, 0, &l), WB_E_BROKER_GONE);
  int64_t after_kill = fx_now_ms() - killed_at;
  assert_non_null(strstr(wb_last_error(), "no successor took this client back within its timeout_ms (300 ms)"));
  if (after_kill < 250 || after_kill > 1500) {
    fail_msg("WB_E_BROKER_GONE came %lld ms after the kill; the client's timeout_ms is 300", (long long)after_kill);
  }
  if (l.wakeups > 10) fail_msg("the notify fd woke its loop %d times", l.wakeups);
  close_pair(&p);
}

static void clean_exit_ends_the_loop_at_once(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 60000, &p);
  assert_int_equal(fx_broker_signal_and_wait(b, SIGTERM, 5000), 0);
  int64_t exited_at = fx_now_ms();
  loop l = {0, 0};
  FX_EXPECT(run_loop(&p, fx_now_ms() + 3000, 0, &l), WB_E_BROKER_GONE);
  assert_non_null(strstr(wb_last_error(), "exited and removed its segment"));
  if (fx_now_ms() - exited_at > 1000) {
    fail_msg("WB_E_BROKER_GONE came %lld ms after a clean exit", (long long)(fx_now_ms() - exited_at));
  }
  close_pair(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(an_outage_costs_few_wakeups, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(no_successor_ends_the_loop_with_broker_gone, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(clean_exit_ends_the_loop_at_once, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
