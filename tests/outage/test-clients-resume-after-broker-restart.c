/* Clients of a broker killed with SIGKILL resume with the successor that adopts its segment, on their own:
 * a blocked wait goes on and returns the version published after the restart; snapshots and leases held
 * across the restart stay valid and are released through the successor; an update open across it publishes;
 * the client keeps its id; the notify fd stays the same and signals the successor's publishes once acked; a
 * successor that started afresh refuses them, and they then get WB_E_BROKER_GONE saying why. */
#include <glob.h>
#include <poll.h>
#include <pthread.h>

#include "fixture.h"

#define TENSORS 2
#define ELEMS 1024
#define ALL ((1u << TENSORS) - 1)

typedef struct pair {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} pair;

static void open_pair(fx_broker *b, uint32_t replicas, pair *p) {
  FX_OK(fx_attach(b, "publisher", &p->pc));
  FX_OK(fx_attach(b, "reader", &p->rc));
  FX_OK(fx_create_topic(p->pc, "model", replicas, TENSORS, ELEMS, &p->pub));
  FX_OK(fx_publish(p->pub, ALL, ELEMS, NULL));
  FX_OK(wb_topic_open(p->rc, "model", &p->reader));
}

static void close_pair(pair *p) {
  FX_OK(wb_detach(p->rc));
  FX_OK(wb_detach(p->pc));
}

static void restart(fx_broker *b) {
  fx_broker_kill9(b);
  fx_sleep_ms(150); /* long enough for clients to see the death */
  assert_int_equal(fx_broker_restart(b), 0);
}

typedef struct waiter {
  wb_topic *topic;
  int rc;
  uint64_t version;
} waiter;

static void *wait_for_version_2(void *arg) {
  waiter *w = arg;
  w->rc = wb_topic_wait(w->topic, 1, -1, &w->version);
  return NULL;
}

static void blocked_wait_goes_on_across_the_restart(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, &p);
  waiter w = {p.reader, -1, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_for_version_2, &w), 0);
  fx_sleep_ms(100);
  restart(b);
  uint64_t v = 0;
  FX_OK(fx_publish(p.pub, ALL, ELEMS, &v)); /* the publisher resumes first */
  assert_int_equal(v, 2);
  alarm(20);
  pthread_join(th, NULL);
  alarm(0);
  FX_OK(w.rc);
  assert_int_equal(w.version, 2);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  close_pair(&p);
}

static uint32_t leases_listed(wb_client *c) {
  uint32_t count = 0;
  FX_OK(wb_list_leases(c, NULL, 0, &count));
  return count;
}

static void snapshots_and_ids_survive_the_restart(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 1, &p);
  uint32_t pc_id, rc_id;
  FX_OK(wb_client_id(p.pc, &pc_id));
  FX_OK(wb_client_id(p.rc, &rc_id));
  wb_snapshot *held;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &held));
  restart(b);

  assert_int_equal(leases_listed(p.rc), 1);
  assert_int_equal(fx_check_tensor(held, 0, ELEMS, 1), 0);
  wb_update *u;
  FX_EXPECT(wb_update_begin(p.pub, 200, &u), WB_E_TIMEOUT); /* R = 1: the held version still blocks */
  FX_OK(wb_snapshot_release(held));
  assert_int_equal(leases_listed(p.rc), 0);
  FX_OK(fx_publish(p.pub, ALL, ELEMS, NULL));

  wb_client_info infos[4];
  for (int i = 0; i < 4; ++i) infos[i] = (wb_client_info)WB_CLIENT_INFO_INIT;
  uint32_t count = 0;
  FX_OK(wb_list_clients(p.rc, infos, 4, &count));
  assert_int_equal(count, 2); /* the same two clients, no orphan beside them */
  int publisher_seen = 0;
  for (uint32_t i = 0; i < count; ++i) {
    assert_true(infos[i].id == pc_id || infos[i].id == rc_id);
    if (infos[i].id == pc_id) publisher_seen = infos[i].topics_published == 1;
  }
  assert_true(publisher_seen);
  close_pair(&p);
}

static void open_update_publishes_after_the_restart(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, &p);
  wb_update *u;
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  uint64_t v = 0;
  FX_OK(wb_update_version(u, &v));
  for (uint32_t i = 0; i < TENSORS; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_tensor_at(u, i, &info));
    fx_fill_u32(info.data, ELEMS, v, i);
  }
  restart(b);
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 2);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  close_pair(&p);
}

/* Polls fd and acks until the topic's latest reaches want; 0 when it does not within timeout_ms. */
static int acks_version(wb_topic *t, int fd, uint64_t want, int timeout_ms) {
  uint64_t latest = 0;
  for (int64_t deadline = fx_now_ms() + timeout_ms; fx_now_ms() < deadline && latest < want;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, (int)(deadline - fx_now_ms())) == 1 && wb_topic_notify_ack(t, &latest) != WB_OK) return 0;
  }
  return latest >= want;
}

static void notify_fd_follows_the_restart(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, &p);
  int fd = -1;
  FX_OK(wb_topic_notify_fd(p.reader, &fd));
  restart(b);
  FX_OK(fx_publish(p.pub, ALL, ELEMS, NULL));
  assert_true(acks_version(p.reader, fd, 2, 2000));
  int again = -1;
  FX_OK(wb_topic_notify_fd(p.reader, &again));
  assert_int_equal(again, fd);
  FX_OK(fx_publish(p.pub, ALL, ELEMS, NULL));
  assert_true(acks_version(p.reader, fd, 3, 2000));
  close_pair(&p);
}

static void fresh_successor_refuses_to_resume(void **state) {
  fx_broker *b = *state;
  pair p;
  open_pair(b, 2, &p);
  fx_broker_kill9(b);
  /* The dead broker's shared memory is gone (its segment and its host allocations, segment.a<N>): the successor
   * creates a new segment, with nothing to resume. */
  char pattern[160];
  snprintf(pattern, sizeof(pattern), "/dev/shm/weightbus-%u-%s{,.a*}", (unsigned)getuid(), b->name);
  glob_t shm;
  assert_int_equal(glob(pattern, GLOB_BRACE, NULL, &shm), 0);
  assert_int_equal(shm.gl_pathc, 2); /* the segment and the publisher's allocation */
  for (size_t i = 0; i < shm.gl_pathc; ++i) assert_int_equal(unlink(shm.gl_pathv[i]), 0);
  globfree(&shm);
  assert_int_equal(fx_broker_restart(b), 0);
  uint64_t v;
  FX_EXPECT(wb_topic_wait(p.reader, 1, 5000, &v), WB_E_BROKER_GONE);
  assert_non_null(strstr(wb_last_error(), "refused to resume"));
  wb_snapshot *s; /* the same client does not ask again */
  FX_EXPECT(wb_snapshot_acquire(p.reader, 0, 1000, &s), WB_E_BROKER_GONE);
  assert_non_null(strstr(wb_last_error(), "did not take this client back"));
  close_pair(&p);
  wb_client *c; /* a new client attaches to the fresh broker as usual */
  FX_OK(fx_attach(b, "new", &c));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(blocked_wait_goes_on_across_the_restart, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(snapshots_and_ids_survive_the_restart, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(open_update_publishes_after_the_restart, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(notify_fd_follows_the_restart, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(fresh_successor_refuses_to_resume, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
