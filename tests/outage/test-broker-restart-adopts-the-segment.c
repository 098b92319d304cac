/* A broker killed with SIGKILL and started again with the same name adopts the segment it left: topics,
 * tensors and published versions are all there for new clients; clients of the dead broker are orphans until
 * they resume (test-clients-resume-after-broker-restart): leases they hold are honoured until they let go or
 * exit; a topic they published changes hands when the same process creates it again or once it exited; a
 * segment of another layout, or one a live broker serves, is refused with a clear message, and so is a socket
 * path where a broker listens. */
#include <fcntl.h>

#include "fixture.h"

#define TENSORS 3
#define ELEMS 4096

typedef struct old_clients {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} old_clients;

static void publish_versions(fx_broker *b, old_clients *o, uint32_t replicas, int versions) {
  FX_OK(fx_attach(b, "publisher", &o->pc));
  FX_OK(fx_attach(b, "reader", &o->rc));
  FX_OK(fx_create_topic(o->pc, "model", replicas, TENSORS, ELEMS, &o->pub));
  for (int v = 0; v < versions; ++v) FX_OK(fx_publish(o->pub, (1u << TENSORS) - 1, ELEMS, NULL));
  FX_OK(wb_topic_open(o->rc, "model", &o->reader));
}

static int begin_and_abort(wb_topic *pub, int64_t timeout_ms) {
  wb_update *u;
  int rc = wb_update_begin(pub, timeout_ms, &u);
  if (rc == WB_OK) wb_update_abort(u);
  return rc;
}

static void restarted_broker_keeps_topics_and_versions(void **state) {
  fx_broker *b = *state;
  old_clients o;
  publish_versions(b, &o, 2, 3);
  wb_snapshot *held;
  FX_OK(wb_snapshot_acquire(o.reader, 0, 1000, &held));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_tensor(held, "t0", &info));

  fx_broker_kill9(b);
  uint64_t v;
  FX_EXPECT(wb_topic_wait(o.reader, 3, 200, &v), WB_E_TIMEOUT); /* waiting on: a successor may come */
  assert_int_equal(fx_check_u32(info.data, ELEMS, 3, 0), -1); /* a held version stays readable meanwhile */
  assert_int_equal(fx_broker_restart(b), 0);

  wb_client *nc, *np;
  wb_topic *reader, *pub;
  FX_OK(fx_attach(b, "reader again", &nc));
  FX_OK(wb_topic_open(nc, "model", &reader));
  FX_OK(wb_topic_latest(reader, &v));
  assert_int_equal(v, 3);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 3), 0);
  FX_OK(wb_snapshot_release(s));

  FX_OK(fx_attach(b, "publisher again", &np));
  FX_OK(fx_take_over(np, "model", 2, TENSORS, ELEMS, &pub)); /* same process: the orphan hands it over */
  FX_OK(fx_publish(pub, (1u << TENSORS) - 1, ELEMS, &v));
  assert_int_equal(v, 4);
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 4), 0);
  FX_OK(wb_snapshot_release(s));

  FX_OK(wb_snapshot_release(held));
  FX_OK(wb_detach(o.rc)); /* after the broker's death: gives everything up without it */
  FX_OK(wb_detach(o.pc));
  FX_OK(wb_detach(np));
  FX_OK(wb_detach(nc));
}

static void orphaned_lease_holds_until_released(void **state) {
  fx_broker *b = *state;
  old_clients o;
  publish_versions(b, &o, 1, 1);
  wb_snapshot *held;
  FX_OK(wb_snapshot_acquire(o.reader, 0, 1000, &held));
  fx_broker_kill9(b);
  assert_int_equal(fx_broker_restart(b), 0);

  wb_client *np;
  wb_topic *pub;
  FX_OK(fx_attach(b, "publisher again", &np));
  FX_OK(fx_take_over(np, "model", 1, TENSORS, ELEMS, &pub));
  FX_EXPECT(begin_and_abort(pub, 200), WB_E_TIMEOUT); /* R = 1: the old client still reads version 1 */
  FX_OK(wb_snapshot_release(held));
  FX_OK(begin_and_abort(pub, 1000));

  /* The orphans hold nothing now: their slots are reclaimed, leaving the new client alone. */
  FX_OK(wb_detach(o.rc));
  FX_OK(wb_detach(o.pc));
  uint32_t count = 0;
  for (int64_t deadline = fx_now_ms() + 2000; fx_now_ms() < deadline; fx_sleep_ms(20)) {
    FX_OK(wb_list_clients(np, NULL, 0, &count));
    if (count == 1) break;
  }
  assert_int_equal(count, 1);
  FX_OK(wb_detach(np));
}

/* A child that attaches, publishes (or reads) topic "model" and then waits to be killed. */
typedef struct holder {
  const fx_broker *broker;
  int publish;
  uint32_t *ready;
} holder;

static int holder_main(void *arg) {
  holder *h = arg;
  wb_client *c;
  wb_topic *t;
  wb_snapshot *s;
  CHILD_OK(fx_attach(h->broker, "holder", &c));
  if (h->publish) {
    CHILD_OK(fx_create_topic(c, "model", 1, TENSORS, ELEMS, &t));
    CHILD_OK(fx_publish(t, (1u << TENSORS) - 1, ELEMS, NULL));
  } else {
    CHILD_OK(wb_topic_open(c, "model", &t));
    CHILD_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  }
  fx_set_word(h->ready, 1);
  for (;;) pause();
}

static void orphans_of_dead_processes_are_reclaimed(void **state) {
  fx_broker *b = *state;
  uint32_t *ready = fx_shared_alloc(2 * sizeof(uint32_t));
  holder publisher = {b, 1, &ready[0]}, reader = {b, 0, &ready[1]};
  pid_t pp = fx_spawn(holder_main, &publisher);
  assert_int_equal(fx_wait_word(&ready[0], 1, 5000), 0);
  pid_t rp = fx_spawn(holder_main, &reader);
  assert_int_equal(fx_wait_word(&ready[1], 1, 5000), 0);
  fx_broker_kill9(b);
  assert_int_equal(fx_broker_restart(b), 0);

  wb_client *c;
  wb_topic *pub;
  FX_OK(fx_attach(b, "successor", &c));
  FX_EXPECT(fx_create_topic(c, "model", 1, 0, 0, &pub), WB_E_BUSY); /* another live process publishes it */
  fx_kill9(pp);
  FX_OK(fx_take_over(c, "model", 1, TENSORS, ELEMS, &pub));
  FX_EXPECT(begin_and_abort(pub, 200), WB_E_TIMEOUT); /* the reader process lives and holds version 1 */
  fx_kill9(rp);
  FX_OK(begin_and_abort(pub, 2000)); /* reclaimed once the broker sees it exited */
  FX_OK(wb_detach(c));
  fx_shared_free(ready, 2 * sizeof(uint32_t));
}

/* Runs weightbusd with this socket and name and returns its exit status; its stderr goes to log. */
static int run_broker(const char *socket_path, const char *name, const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    execl(fx_broker_path(), fx_broker_path(), "--foreground", "--socket", socket_path, "--name", name, NULL);
    _exit(127);
  }
  return fx_wait_child(pid, 10000);
}

/* The same with b's name on another socket. */
static int run_second_broker(fx_broker *b, const char *log) {
  char socket_path[160];
  snprintf(socket_path, sizeof(socket_path), "%s/second.sock", b->dir);
  return run_broker(socket_path, b->name, log);
}

static int log_contains(const char *log, const char *text) {
  char buf[4096] = {0};
  FILE *f = fopen(log, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  if (strstr(buf, text) == NULL) fprintf(stderr, "broker log lacks \"%s\":\n%s\n", text, buf);
  return strstr(buf, text) != NULL;
}

static void other_layout_and_live_broker_are_refused(void **state) {
  fx_broker *b = *state;
  char log[160];
  snprintf(log, sizeof(log), "%s/second.log", b->dir);
  assert_int_equal(run_second_broker(b, log), 1);
  assert_true(log_contains(log, "still serves"));

  fx_broker_kill9(b);
  char shm[160];
  snprintf(shm, sizeof(shm), "/dev/shm/weightbus-%u-%s", (unsigned)getuid(), b->name);
  int fd = open(shm, O_RDWR);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, "NOTOURS!", 8, 0), 8); /* the magic number */
  close(fd);
  assert_int_equal(run_second_broker(b, log), 1);
  assert_true(log_contains(log, "another layout"));
  assert_true(log_contains(log, "rm /dev/shm/weightbus-"));
  assert_int_equal(access(shm, F_OK), 0); /* left where it was */
  unlink(log);
}

/* Another name on b's socket: refused while b listens, and b's socket and clients are left as they were. */
static void second_broker_on_a_live_socket_is_refused(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, "before", &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, 16, &t));
  char log[160], name[96];
  snprintf(log, sizeof(log), "%s/second.log", b->dir);
  snprintf(name, sizeof(name), "%s-other", b->name);
  assert_int_equal(run_broker(b->socket_path, name, log), 1);
  assert_true(log_contains(log, "a broker already listens at"));
  FX_OK(fx_publish(t, 1, 16, NULL)); /* the first broker still serves its client... */
  wb_client *late;
  FX_OK(fx_attach(b, "after", &late)); /* ...and new ones at the same path */
  FX_OK(wb_detach(late));
  FX_OK(wb_detach(c));
  unlink(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(restarted_broker_keeps_topics_and_versions, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(orphaned_lease_holds_until_released, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(orphans_of_dead_processes_are_reclaimed, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(other_layout_and_live_broker_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(second_broker_on_a_live_socket_is_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
