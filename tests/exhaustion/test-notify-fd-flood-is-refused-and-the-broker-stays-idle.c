/* One client asking for notify fds until the broker has no descriptor left (its RLIMIT_NOFILE set low here,
 * the per-client limit high): it is refused with WB_E_NOSPC naming RLIMIT_NOFILE; the broker then sits idle
 * (no accept spinning), its log grows by a few lines at most (5 a second per call site, at any --log-level), a publisher and a reader attached before go on
 * publishing and reading, and a new client can still attach and read. A flood of bare connections is refused
 * the same way: wb_attach returns WB_E_NOSPC, not a protocol error or a timeout. */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fixture.h"

enum { kNofile = 64, kMaxClients = 4, kMaxHandles = 200, kElems = 16, kMaxLogLines = 15 };

static char log_path[64];
static fx_broker_opts low_nofile = {.max_clients = kMaxClients,
                                    .max_subscriptions_per_client = 100000,
                                    .nofile = kNofile,
                                    .log_path = log_path};

/* The broker's CPU time so far (utime + stime of /proc/PID/stat), in clock ticks, or -1. */
static long long cpu_ticks(pid_t pid) {
  char path[64], text[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';
  const char *fields = strrchr(text, ')'); /* the command name may hold spaces */
  unsigned long long utime, stime;
  if (fields == NULL || sscanf(fields + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                               &stime) != 2) {
    return -1;
  }
  return (long long)(utime + stime);
}

static int log_lines(void) {
  FILE *f = fopen(log_path, "r");
  if (f == NULL) return 0;
  int lines = 0;
  for (int c; (c = fgetc(f)) != EOF;) lines += c == '\n';
  fclose(f);
  return lines;
}

static int setup(void **state) {
  snprintf(log_path, sizeof(log_path), "/tmp/wbtest-exhaustion-%d.log", (int)getpid());
  unlink(log_path);
  return fx_setup(state);
}

static int teardown(void **state) {
  int rc = fx_teardown(state);
  unlink(log_path);
  return rc;
}

/* The broker stays idle for a second: less than 0.2 s of CPU. */
static void assert_idle(pid_t broker) {
  long long before = cpu_ticks(broker);
  fx_sleep_ms(1000);
  long long used = cpu_ticks(broker) - before;
  assert_true(before >= 0);
  if (used * 5 >= sysconf(_SC_CLK_TCK)) fail_msg("the broker used %lld ticks of CPU in an idle second", used);
}

/* A publisher and a reader attached before the flood: publish version v and read it back. */
static void publish_and_read(wb_topic *pub, wb_topic *reader, uint64_t v) {
  uint64_t published, latest;
  FX_OK(fx_publish(pub, 1, kElems, &published));
  assert_int_equal(published, v);
  FX_OK(wb_topic_wait(reader, v - 1, 5000, &latest));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, 5000, &s));
  assert_int_equal(fx_check_tensor(s, 0, kElems, v), 0);
  FX_OK(wb_snapshot_release(s));
}

static void a_notify_fd_flood_is_refused_and_others_go_on(void **state) {
  fx_broker *b = *state;
  wb_client *publisher, *reader, *flooder;
  wb_topic *pub, *rd, *handles[kMaxHandles];
  FX_OK(fx_attach(b, "publisher", &publisher));
  FX_OK(fx_attach(b, "reader", &reader));
  FX_OK(fx_attach(b, "flooder", &flooder));
  FX_OK(fx_create_topic(publisher, "model", 2, 1, kElems, &pub));
  FX_OK(wb_topic_open(reader, "model", &rd));
  publish_and_read(pub, rd, 1);
  int lines_before = log_lines();

  int n = 0, rc = WB_OK, fd;
  for (; n < kMaxHandles; ++n) {
    FX_OK(wb_topic_open(flooder, "model", &handles[n]));
    if ((rc = wb_topic_notify_fd(handles[n], &fd)) != WB_OK) break;
  }
  assert_int_equal(rc, WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "RLIMIT_NOFILE"));
  assert_true(n > 0 && n < kMaxHandles);
  /* Asking again and again changes nothing. */
  for (int i = 0; i < 1000; ++i) FX_EXPECT(wb_topic_notify_fd(handles[n], &fd), WB_E_NOSPC);

  assert_idle(b->pid);
  publish_and_read(pub, rd, 2);
  wb_client *late;
  wb_topic *late_topic;
  FX_OK(fx_attach(b, "late", &late));
  FX_OK(wb_topic_open(late, "model", &late_topic));
  uint64_t latest;
  FX_OK(wb_topic_latest(late_topic, &latest));
  assert_int_equal(latest, 2);
  int grown = log_lines() - lines_before;
  if (grown > kMaxLogLines) fail_msg("the broker's log grew by %d lines during the flood (see %s)", grown, log_path);

  /* Closing the flooder gives its descriptors back. */
  FX_OK(wb_detach(flooder));
  FX_OK(wb_topic_notify_fd(late_topic, &fd));
  FX_OK(wb_detach(late));
  FX_OK(wb_detach(reader));
  FX_OK(wb_detach(publisher));
}

static int connect_bare(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) return -1;
  memcpy(addr.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void a_connection_flood_is_refused_with_nospc(void **state) {
  fx_broker *b = *state;
  wb_client *publisher, *reader, *c;
  wb_topic *pub, *rd;
  FX_OK(fx_attach(b, "publisher", &publisher));
  FX_OK(fx_attach(b, "reader", &reader));
  FX_OK(fx_create_topic(publisher, "model", 2, 1, kElems, &pub));
  FX_OK(wb_topic_open(reader, "model", &rd));
  int lines_before = log_lines();

  enum { kBare = 2 * kNofile };
  int bare[kBare];
  for (int i = 0; i < kBare; ++i) assert_true((bare[i] = connect_bare(b->socket_path)) >= 0);
  fx_sleep_ms(200); /* the broker accepts them all: the ones over its budget are refused and closed */
  FX_EXPECT(fx_attach(b, "one-too-many", &c), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "RLIMIT_NOFILE"));
  assert_idle(b->pid);
  publish_and_read(pub, rd, 1);
  int grown = log_lines() - lines_before;
  if (grown > kMaxLogLines) fail_msg("the broker's log grew by %d lines during the flood (see %s)", grown, log_path);

  for (int i = 0; i < kBare; ++i) close(bare[i]);
  fx_sleep_ms(200);
  FX_OK(fx_attach(b, "after", &c));
  FX_OK(wb_detach(c));
  FX_OK(wb_detach(reader));
  FX_OK(wb_detach(publisher));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(a_notify_fd_flood_is_refused_and_others_go_on, setup, teardown,
                                               &low_nofile),
      cmocka_unit_test_prestate_setup_teardown(a_connection_flood_is_refused_with_nospc, setup, teardown,
                                               &low_nofile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
