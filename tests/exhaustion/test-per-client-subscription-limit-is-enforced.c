/* --max-subscriptions-per-client: a client holding its limit of notify fds is refused another with WB_E_NOSPC
 * naming the flag, keeping nothing of the refused one; other clients keep their own budget, and closing a
 * topic handle (its notify fd with it) or the connection gives the place back. */
#include <poll.h>

#include "fixture.h"

static fx_broker_opts three_per_client = {.max_subscriptions_per_client = 3};

enum { kHandles = 5 };

typedef struct handles {
  wb_client *publisher, *reader;
  wb_topic *pub;
  wb_topic *topics[kHandles]; /* the reader's handles of "model" */
} handles;

static void open_handles(fx_broker *b, handles *h) {
  FX_OK(fx_attach(b, "publisher", &h->publisher));
  FX_OK(fx_attach(b, "reader", &h->reader));
  FX_OK(fx_create_topic(h->publisher, "model", 2, 1, 16, &h->pub));
  for (int i = 0; i < kHandles; ++i) FX_OK(wb_topic_open(h->reader, "model", &h->topics[i]));
}

static void a_fourth_notify_fd_is_refused_and_others_still_subscribe(void **state) {
  handles h;
  int fd;
  open_handles(*state, &h);
  for (int i = 0; i < 3; ++i) FX_OK(wb_topic_notify_fd(h.topics[i], &fd));
  FX_EXPECT(wb_topic_notify_fd(h.topics[3], &fd), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "--max-subscriptions-per-client"));
  /* Refused again, not half-made: the handle has no notify fd to acknowledge. */
  FX_EXPECT(wb_topic_notify_fd(h.topics[3], &fd), WB_E_NOSPC);
  uint64_t latest;
  FX_EXPECT(wb_topic_notify_ack(h.topics[3], &latest), WB_E_STATE);
  /* Another client has its own budget. */
  wb_topic *other;
  FX_OK(wb_topic_open(h.publisher, "model", &other));
  FX_OK(wb_topic_notify_fd(other, &fd));
  /* The subscriptions that were kept still work. */
  FX_OK(wb_topic_notify_fd(h.topics[0], &fd));
  FX_OK(fx_publish(h.pub, 1, 16, NULL));
  struct pollfd pfd = {fd, POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, 5000), 1);
  FX_OK(wb_detach(h.reader));
  FX_OK(wb_detach(h.publisher));
}

static void closing_a_handle_or_the_connection_frees_its_place(void **state) {
  handles h;
  int fd;
  open_handles(*state, &h);
  for (int i = 0; i < 3; ++i) FX_OK(wb_topic_notify_fd(h.topics[i], &fd));
  FX_EXPECT(wb_topic_notify_fd(h.topics[3], &fd), WB_E_NOSPC);
  FX_OK(wb_topic_close(h.topics[0]));
  FX_OK(wb_topic_notify_fd(h.topics[3], &fd));
  FX_EXPECT(wb_topic_notify_fd(h.topics[4], &fd), WB_E_NOSPC);
  FX_OK(wb_detach(h.reader));
  /* The limit bounds one connection: a new one starts with none. */
  FX_OK(fx_attach(*state, "reader-again", &h.reader));
  for (int i = 0; i < 3; ++i) {
    FX_OK(wb_topic_open(h.reader, "model", &h.topics[i]));
    FX_OK(wb_topic_notify_fd(h.topics[i], &fd));
  }
  FX_OK(wb_detach(h.reader));
  FX_OK(wb_detach(h.publisher));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(a_fourth_notify_fd_is_refused_and_others_still_subscribe, fx_setup,
                                               fx_teardown, &three_per_client),
      cmocka_unit_test_prestate_setup_teardown(closing_a_handle_or_the_connection_frees_its_place, fx_setup,
                                               fx_teardown, &three_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
