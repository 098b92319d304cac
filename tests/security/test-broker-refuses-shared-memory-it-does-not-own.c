/* weightbusd never adopts or uses a shared-memory object it does not own: a segment or host allocation left
 * under its name (/dev/shm/weightbus-<uid>-<name>[.a<N>]) must be a regular file of its uid with mode 0600, or
 * it refuses to start (exit 1) naming the object, its owner and mode, and what to do, and leaves it in place.
 * Planted: garbage of mode 0666, a real segment copied by uid 65534 (as it would copy one of its own brokers':
 * the layout is the same), our own segment opened to others, an allocation of another uid, a symbolic link.
 * At a fresh start, a stale allocation of another uid in the way is not reused: removed by a root broker,
 * refused (WB_E_PERM naming it) by another. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fixture.h"
#include "security.h"

static char err[4096];

static void unique_name(char *name, size_t size) {
  static unsigned counter;
  snprintf(name, size, "sec-shm-%d-%u", (int)getpid(), ++counter);
}

/* Runs weightbusd named name on a fresh socket and expects it to refuse, its message holding each needle. */
static void expect_refusal(const char *name, const char *needle, const char *needle2) {
  char dir[64], sock[128], advice[256];
  assert_int_equal(sec_temp_dir(dir), 0);
  snprintf(sock, sizeof(sock), "%s/broker.sock", dir);
  int code = sec_run_broker(sock, name, NULL, 0, err, sizeof(err));
  if (code != 1) fail_msg("weightbusd exited with %d, expected 1; stderr: %s", code, err);
  snprintf(advice, sizeof(advice), "remove /dev/shm/weightbus-%u-%s and /dev/shm/weightbus-%u-%s.a*", geteuid(),
           name, geteuid(), name);
  sec_expect_text(err, needle, needle2, advice, "or start weightbusd with another --name", NULL);
  assert_int_equal(rmdir(dir), 0);
}

static void plant(const char *path, mode_t mode, const void *bytes, size_t size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
  assert_true(fd >= 0);
  assert_int_equal(fchmod(fd, mode), 0);
  assert_int_equal(write(fd, bytes, size), (ssize_t)size);
  close(fd);
}

static void garbage_is_refused(void **state) {
  (void)state;
  char name[64], path[256], want[400];
  unique_name(name, sizeof(name));
  sec_shm_path(path, geteuid(), name, "");
  plant(path, 0666, "not a segment", 13);
  snprintf(want, sizeof(want), "%s has mode 0666, not 0600", path);
  expect_refusal(name, want, NULL);
  struct stat st;
  assert_int_equal(stat(path, &st), 0); /* left where it was */
  if (sec_can_be_nobody()) {
    assert_int_equal(chown(path, SEC_NOBODY, SEC_NOBODY), 0);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(want, sizeof(want), "%s is owned by uid 65534 (mode 0600), not by uid 0", path);
    expect_refusal(name, want, NULL);
  }
  assert_int_equal(unlink(path), 0);
}

/* A broker with a published topic (so a host allocation .a0 too), killed: what it leaves is a real segment. */
static void leave_a_real_segment(fx_broker *b) {
  assert_int_equal(fx_broker_start(b, NULL), 0);
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, "publisher", &c));
  FX_OK(fx_create_topic(c, "policy", 1, 1, 16, &t));
  FX_OK(fx_publish(t, 1, 16, NULL));
  FX_OK(wb_topic_close(t));
  FX_OK(wb_detach(c));
  fx_broker_kill9(b);
}

static void *read_all(const char *path, size_t *size) {
  struct stat st;
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0 && fstat(fd, &st) == 0);
  void *bytes = malloc((size_t)st.st_size);
  assert_int_equal(read(fd, bytes, (size_t)st.st_size), st.st_size);
  close(fd);
  *size = (size_t)st.st_size;
  return bytes;
}

typedef struct copy_job {
  char to[2][256];
  void *bytes[2];
  size_t size[2];
} copy_job;

static int copy_as_nobody(void *arg) {
  copy_job *job = arg;
  CHILD_CHECK(sec_become_nobody() == 0);
  umask(0);
  for (int i = 0; i < 2; ++i) {
    int fd = open(job->to[i], O_WRONLY | O_CREAT | O_EXCL, 0666);
    CHILD_CHECK(fd >= 0 && write(fd, job->bytes[i], job->size[i]) == (ssize_t)job->size[i]);
    close(fd);
  }
  return 0;
}

static void a_real_segment_copied_by_another_uid_is_refused(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  fx_broker b;
  char from[256], name[64], want[400];
  leave_a_real_segment(&b);
  unique_name(name, sizeof(name));
  copy_job job;
  job.bytes[0] = read_all(sec_shm_path(from, 0, b.name, ""), &job.size[0]);
  job.bytes[1] = read_all(sec_shm_path(from, 0, b.name, ".a0"), &job.size[1]);
  sec_shm_path(job.to[0], 0, name, "");
  sec_shm_path(job.to[1], 0, name, ".a0");
  pid_t child = fx_spawn(copy_as_nobody, &job);
  assert_int_equal(fx_wait_child(child, 10000), 0);
  snprintf(want, sizeof(want), "%s is owned by uid 65534 (mode 0666), not by uid 0", job.to[0]);
  expect_refusal(name, want, NULL);
  free(job.bytes[0]);
  free(job.bytes[1]);
  sec_remove_shm(0, name);
  assert_int_equal(fx_broker_stop(&b), 0);
}

static void our_own_segment_opened_to_others_is_refused(void **state) {
  (void)state;
  fx_broker b;
  char path[256], want[400];
  leave_a_real_segment(&b);
  sec_shm_path(path, geteuid(), b.name, "");
  assert_int_equal(chmod(path, 0666), 0);
  snprintf(want, sizeof(want), "%s has mode 0666, not 0600", path);
  expect_refusal(b.name, want, NULL);
  assert_int_equal(chmod(path, 0600), 0); /* closed again, the same segment is adopted */
  assert_int_equal(fx_broker_restart(&b), 0);
  assert_int_equal(fx_broker_stop(&b), 0);
}

static void an_allocation_not_ours_or_not_0600_is_refused(void **state) {
  (void)state;
  fx_broker b;
  char path[256], want[400];
  leave_a_real_segment(&b);
  sec_shm_path(path, geteuid(), b.name, ".a0");
  assert_int_equal(chmod(path, 0644), 0);
  snprintf(want, sizeof(want), "%s has mode 0644, not 0600", path);
  expect_refusal(b.name, want, NULL);
  if (sec_can_be_nobody()) {
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(chown(path, SEC_NOBODY, SEC_NOBODY), 0);
    snprintf(want, sizeof(want), "%s is owned by uid 65534 (mode 0600), not by uid 0", path);
    expect_refusal(b.name, want, NULL);
    assert_int_equal(chown(path, 0, 0), 0);
  }
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(fx_broker_restart(&b), 0);
  assert_int_equal(fx_broker_stop(&b), 0);
}

static void a_symbolic_link_is_refused(void **state) {
  (void)state;
  char name[64], path[256], target[256], want[400];
  unique_name(name, sizeof(name));
  sec_shm_path(path, geteuid(), name, "");
  sec_shm_path(target, geteuid(), name, ".target");
  plant(target, 0600, "x", 1);
  assert_int_equal(symlink(target, path), 0);
  snprintf(want, sizeof(want), "%s is not a regular shared-memory object", path);
  expect_refusal(name, want, NULL);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(unlink(target), 0);
}

/* No segment to adopt, but allocation 0's name is taken by another uid's object: the broker never maps it; as
 * root it removes it and makes its own. */
static void a_stale_allocation_of_another_uid_is_not_reused(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  char name[64], dir[64], sock[128], path[256];
  unique_name(name, sizeof(name));
  sec_shm_path(path, 0, name, ".a0");
  plant(path, 0666, "planted", 7);
  assert_int_equal(chown(path, SEC_NOBODY, SEC_NOBODY), 0);
  assert_int_equal(sec_temp_dir(dir), 0);
  snprintf(sock, sizeof(sock), "%s/broker.sock", dir);
  pid_t broker = sec_start_broker(sock, name, 0);
  fx_broker b = {.pid = broker};
  snprintf(b.socket_path, sizeof(b.socket_path), "%s", sock);
  wb_client *c = NULL;
  for (int i = 0; i < 500 && fx_attach(&b, "publisher", &c) != WB_OK; ++i) fx_sleep_ms(10);
  assert_non_null(c);
  wb_topic *t;
  FX_OK(fx_create_topic(c, "policy", 1, 1, 16, &t));
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_uid, 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  FX_OK(wb_topic_close(t));
  FX_OK(wb_detach(c));
  kill(broker, SIGTERM);
  assert_int_equal(fx_wait_child(broker, 10000), 0);
  sec_remove_shm(0, name);
  assert_int_equal(rmdir(dir), 0);
}

typedef struct nobody_publisher {
  char socket_path[128];
  char object[256];
} nobody_publisher;

/* As uid 65534, the client of a broker of 65534: creating a topic's tensors needs allocation 0. */
static int create_as_nobody(void *arg) {
  nobody_publisher *job = arg;
  CHILD_CHECK(sec_become_nobody() == 0);
  fx_broker b = {0};
  snprintf(b.socket_path, sizeof(b.socket_path), "%s", job->socket_path);
  wb_client *c = NULL;
  for (int i = 0; i < 500 && fx_attach(&b, "publisher", &c) != WB_OK; ++i) fx_sleep_ms(10);
  CHILD_CHECK(c != NULL);
  wb_topic *t;
  CHILD_EXPECT(fx_create_topic(c, "policy", 1, 1, 16, &t), WB_E_PERM);
  CHILD_CHECK(strstr(wb_last_error(), job->object) != NULL);
  CHILD_CHECK(strstr(wb_last_error(), "remove it as its owner or root, or start weightbusd with another --name"));
  CHILD_OK(wb_detach(c));
  return 0;
}

/* The same for a broker that is not root, which cannot remove root's object in its way: the tensors' creation
 * is refused with WB_E_PERM naming it, and the broker goes on. */
static void a_stale_allocation_a_broker_cannot_remove_refuses_the_tensors(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  char name[64], dir[64];
  nobody_publisher *job = fx_shared_alloc(sizeof(nobody_publisher));
  unique_name(name, sizeof(name));
  sec_shm_path(job->object, SEC_NOBODY, name, ".a0");
  plant(job->object, 0666, "planted", 7);
  assert_int_equal(sec_temp_dir(dir), 0);
  assert_int_equal(chown(dir, SEC_NOBODY, SEC_NOBODY), 0);
  snprintf(job->socket_path, sizeof(job->socket_path), "%s/broker.sock", dir);
  pid_t broker = sec_start_broker(job->socket_path, name, 1);
  pid_t child = fx_spawn(create_as_nobody, job);
  assert_int_equal(fx_wait_child(child, 20000), 0);
  struct stat st;
  assert_int_equal(stat(job->object, &st), 0);
  assert_int_equal(st.st_uid, 0); /* root's object, left alone */
  kill(broker, SIGTERM);
  assert_int_equal(fx_wait_child(broker, 10000), 0);
  sec_remove_shm(SEC_NOBODY, name);
  assert_int_equal(rmdir(dir), 0);
  fx_shared_free(job, sizeof(nobody_publisher));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(garbage_is_refused),
      cmocka_unit_test(a_real_segment_copied_by_another_uid_is_refused),
      cmocka_unit_test(our_own_segment_opened_to_others_is_refused),
      cmocka_unit_test(an_allocation_not_ours_or_not_0600_is_refused),
      cmocka_unit_test(a_symbolic_link_is_refused),
      cmocka_unit_test(a_stale_allocation_of_another_uid_is_not_reused),
      cmocka_unit_test(a_stale_allocation_a_broker_cannot_remove_refuses_the_tensors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
