/* wb_topic_remove removes a topic that no publisher holds and no lease pins: its host shared memory is
 * unlinked, listings no longer show it, its name opens nothing and can be created afresh, and handles that
 * readers still hold return WB_E_NOT_FOUND (a blocked wait too) until closed. A publisher or a lease makes it
 * WB_E_BUSY; bad names and unknown topics get their own codes. */
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>

#include "fixture.h"

typedef struct two_clients {
  wb_client *pub, *reader;
} two_clients;

static void attach_two(fx_broker *b, two_clients *c) {
  FX_OK(fx_attach(b, "publisher", &c->pub));
  FX_OK(fx_attach(b, "reader", &c->reader));
}

static void detach_two(two_clients *c) {
  FX_OK(wb_detach(c->pub));
  FX_OK(wb_detach(c->reader));
}

/* Whether the broker's host allocation `a` is in /dev/shm. */
static int allocation_exists(const fx_broker *b, uint32_t a) {
  char path[256];
  struct stat st;
  snprintf(path, sizeof(path), "/dev/shm/weightbus-%u-%s.a%u", (unsigned)getuid(), b->name, a);
  return stat(path, &st) == 0;
}

static uint32_t topic_count(wb_client *c) {
  uint32_t count = 99;
  FX_OK(wb_list_topics(c, NULL, 0, &count));
  return count;
}

/* "policy", two versions published, its publisher gone: unused. */
static void published_and_closed(two_clients *c) {
  wb_topic *pub;
  FX_OK(fx_create_topic(c->pub, "policy", 2, 2, 32, &pub));
  FX_OK(fx_publish(pub, 3, 32, NULL));
  FX_OK(fx_publish(pub, 1, 32, NULL));
  FX_OK(wb_topic_close(pub));
}

static void an_unused_topic_is_removed_and_its_memory_freed(void **state) {
  fx_broker *b = *state;
  two_clients c;
  wb_topic *reader, *again;
  wb_snapshot *s;
  attach_two(b, &c);
  published_and_closed(&c);
  FX_OK(wb_topic_open(c.reader, "policy", &reader));
  assert_true(allocation_exists(b, 0));
  assert_int_equal(topic_count(c.reader), 1);

  FX_OK(wb_topic_remove(c.pub, "policy"));
  assert_false(allocation_exists(b, 0));
  assert_int_equal(topic_count(c.reader), 0);
  FX_EXPECT(wb_topic_open(c.reader, "policy", &again), WB_E_NOT_FOUND);
  FX_EXPECT(wb_topic_remove(c.pub, "policy"), WB_E_NOT_FOUND);

  /* The reader's handle is safe: every call says the topic is gone, and close frees it. */
  uint64_t latest = 0;
  uint32_t count = 0;
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  wb_tensor_info t = WB_TENSOR_INFO_INIT;
  FX_EXPECT(wb_topic_latest(reader, &latest), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "was removed"));
  FX_EXPECT(wb_topic_wait(reader, 0, 100, &latest), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_acquire(reader, 0, 100, &s), WB_E_NOT_FOUND);
  FX_EXPECT(wb_topic_get_info(reader, &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_topic_tensor_count(reader, &count), WB_E_NOT_FOUND);
  FX_EXPECT(wb_topic_tensor(reader, 0, &t), WB_E_NOT_FOUND);
  FX_OK(wb_topic_close(reader));

  /* The name is free: a new topic of it starts afresh, with other replicas if it likes. */
  wb_topic *pub;
  FX_OK(fx_create_topic(c.pub, "policy", 3, 1, 8, &pub));
  FX_OK(wb_topic_latest(pub, &latest));
  assert_int_equal(latest, 0);
  FX_OK(wb_topic_tensor_count(pub, &count));
  assert_int_equal(count, 1);
  uint64_t v = 0;
  FX_OK(fx_publish(pub, 1, 8, &v));
  assert_int_equal(v, 1);
  FX_OK(wb_topic_open(c.reader, "policy", &reader));
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, 8, 1), 0);
  FX_OK(wb_snapshot_release(s));
  assert_int_equal(topic_count(c.reader), 1);
  detach_two(&c);
}

static void a_topic_with_a_publisher_is_busy(void **state) {
  two_clients c;
  wb_topic *pub;
  attach_two(*state, &c);
  FX_OK(fx_create_topic(c.pub, "policy", 2, 1, 8, &pub));
  FX_EXPECT(wb_topic_remove(c.reader, "policy"), WB_E_BUSY);
  assert_non_null(strstr(wb_last_error(), "has a publisher"));
  FX_EXPECT(wb_topic_remove(c.pub, "policy"), WB_E_BUSY);  /* its own publisher must close it first */
  FX_OK(fx_publish(pub, 1, 8, NULL));                       /* still whole */
  FX_OK(wb_topic_close(pub));
  FX_OK(wb_topic_remove(c.reader, "policy"));
  detach_two(&c);
}

static void a_topic_with_a_lease_is_busy(void **state) {
  two_clients c;
  wb_topic *reader;
  wb_snapshot *s;
  attach_two(*state, &c);
  published_and_closed(&c);
  FX_OK(wb_topic_open(c.reader, "policy", &reader));
  FX_OK(wb_snapshot_acquire(reader, 1, 1000, &s));
  FX_EXPECT(wb_topic_remove(c.pub, "policy"), WB_E_BUSY);
  assert_non_null(strstr(wb_last_error(), "1 lease(s)"));
  /* The refused removal left the topic as it was: the lease reads, and new ones are taken. */
  assert_int_equal(fx_check_tensor(s, 0, 32, 1), 0);
  wb_snapshot *latest;
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &latest));
  assert_int_equal(fx_check_tensor(latest, 0, 32, 2), 0);
  FX_OK(wb_snapshot_release(latest));
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_topic_remove(c.pub, "policy"));
  FX_OK(wb_topic_close(reader));
  detach_two(&c);
}

static void bad_arguments_get_their_codes(void **state) {
  two_clients c;
  char name[WB_NAME_MAX + 2];
  attach_two(*state, &c);
  FX_EXPECT(wb_topic_remove(NULL, "policy"), WB_E_INVAL);
  FX_EXPECT(wb_topic_remove(c.pub, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_remove(c.pub, ""), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_topic_remove(c.pub, fx_name_of_length(name, WB_NAME_MAX + 1)), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_topic_remove(c.pub, "nothing-here"), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "nothing-here"));
  detach_two(&c);
}

typedef struct waiter {
  wb_topic *topic;
  int rc;
} waiter;

static void *wait_for_a_version(void *arg) {
  waiter *w = arg;
  uint64_t v = 0;
  w->rc = wb_topic_wait(w->topic, 2, 10000, &v);
  return NULL;
}

static void blocked_readers_wake_and_find_it_gone(void **state) {
  two_clients c;
  waiter w = {NULL, 1};
  pthread_t thread;
  int fd = -1;
  attach_two(*state, &c);
  published_and_closed(&c);
  FX_OK(wb_topic_open(c.reader, "policy", &w.topic));
  FX_OK(wb_topic_notify_fd(w.topic, &fd));
  uint64_t latest = 0;
  FX_OK(wb_topic_notify_ack(w.topic, &latest));
  assert_int_equal(pthread_create(&thread, NULL, wait_for_a_version, &w), 0);
  fx_sleep_ms(100);  /* let it block */
  int64_t start = fx_now_ms();
  FX_OK(wb_topic_remove(c.pub, "policy"));
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_int_equal(w.rc, WB_E_NOT_FOUND);
  assert_true(fx_now_ms() - start < 5000);
  struct pollfd p = {fd, POLLIN, 0};
  assert_int_equal(poll(&p, 1, 5000), 1);
  FX_EXPECT(wb_topic_notify_ack(w.topic, &latest), WB_E_NOT_FOUND);
  FX_OK(wb_topic_close(w.topic));
  detach_two(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(an_unused_topic_is_removed_and_its_memory_freed, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_topic_with_a_publisher_is_busy, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_topic_with_a_lease_is_busy, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments_get_their_codes, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(blocked_readers_wake_and_find_it_gone, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
