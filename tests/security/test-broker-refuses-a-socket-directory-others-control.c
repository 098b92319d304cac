/* weightbusd never listens in a directory another uid controls: one others (or its group) can write, one owned
 * by another uid, or a symbolic link (followed, it would lead anywhere). The default directory and an explicit
 * --socket directory alike, /tmp itself included: it refuses to start (exit 1) with a message naming the
 * directory, its owner and mode, and what to do, and leaves nothing behind. */
#include <stdlib.h>
#include <sys/stat.h>

#include "fixture.h"
#include "security.h"

static char err[4096];

static void run_name(char *name, size_t size) {
  static unsigned counter;
  snprintf(name, size, "sec-dir-%d-%u", (int)getpid(), ++counter);
}

/* Starts weightbusd on dir/broker.sock (or with XDG_RUNTIME_DIR=xdg when dir is NULL) and expects it to refuse. */
static void expect_refusal(const char *dir, const char *xdg, const char *reason) {
  char name[64], socket[256], shm[256];
  run_name(name, sizeof(name));
  if (dir != NULL) snprintf(socket, sizeof(socket), "%s/broker.sock", dir);
  int code = sec_run_broker(dir != NULL ? socket : NULL, name, xdg, 0, err, sizeof(err));
  if (code != 1) fail_msg("weightbusd exited with %d, expected 1; stderr: %s", code, err);
  sec_expect_text(err, reason, "remove it, or set XDG_RUNTIME_DIR, --socket or WEIGHTBUS_SOCKET", NULL);
  struct stat st;
  if (dir != NULL && lstat(socket, &st) == 0) fail_msg("%s was created", socket);
  if (stat(sec_shm_path(shm, geteuid(), name, ""), &st) == 0) fail_msg("%s was created", shm);
}

static void a_directory_of_ours_others_can_write_is_refused(void **state) {
  (void)state;
  char dir[64], reason[256];
  assert_int_equal(sec_temp_dir(dir), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  snprintf(reason, sizeof(reason), "socket directory %s (uid %u, mode 0777) is writable by others", dir, geteuid());
  expect_refusal(dir, NULL, reason);
  assert_int_equal(chmod(dir, 0770), 0);
  snprintf(reason, sizeof(reason), "socket directory %s (uid %u, mode 0770) is writable by its group", dir,
           geteuid());
  expect_refusal(dir, NULL, reason);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0770); /* refused, not repaired behind the user's back */
  assert_int_equal(rmdir(dir), 0);
}

/* No --socket: $XDG_RUNTIME_DIR/weightbus, made beforehand with mode 0777. */
static void the_default_directory_made_open_beforehand_is_refused(void **state) {
  (void)state;
  char xdg[64], dir[128], reason[256];
  assert_int_equal(sec_temp_dir(xdg), 0);
  snprintf(dir, sizeof(dir), "%s/weightbus", xdg);
  assert_int_equal(mkdir(dir, 0777), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  snprintf(reason, sizeof(reason), "socket directory %s (uid %u, mode 0777) is writable by others", dir, geteuid());
  expect_refusal(NULL, xdg, reason);
  assert_int_equal(rmdir(dir), 0);
  assert_int_equal(rmdir(xdg), 0);
}

static void a_socket_directly_in_tmp_is_refused(void **state) {
  (void)state;
  char reason[256];
  if (geteuid() == 0) {
    snprintf(reason, sizeof(reason), "socket directory /tmp (uid 0, mode 1777) is writable by others");
  } else {
    snprintf(reason, sizeof(reason), "socket directory /tmp is owned by uid 0 (mode 1777), not by uid %u",
             geteuid());
  }
  expect_refusal("/tmp", NULL, reason);
}

static void a_directory_of_another_uid_is_refused(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  char dir[64], reason[256];
  assert_int_equal(sec_temp_dir(dir), 0);
  assert_int_equal(chown(dir, SEC_NOBODY, SEC_NOBODY), 0);
  snprintf(reason, sizeof(reason), "socket directory %s is owned by uid 65534 (mode 0700), not by uid 0", dir);
  expect_refusal(dir, NULL, reason);
  assert_int_equal(chmod(dir, 0777), 0);
  snprintf(reason, sizeof(reason), "socket directory %s is owned by uid 65534 (mode 0777), not by uid 0", dir);
  expect_refusal(dir, NULL, reason);
  assert_int_equal(rmdir(dir), 0);
}

/* The case: nobody makes /tmp/weightbus-0 a link to a directory of its own, mode 0777. */
static void a_symbolic_link_to_a_directory_of_another_uid_is_refused(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  char dir[64], target[128], link[128], reason[256];
  assert_int_equal(sec_temp_dir(dir), 0);
  snprintf(target, sizeof(target), "%s/nobodys", dir);
  snprintf(link, sizeof(link), "%s/link", dir);
  assert_int_equal(mkdir(target, 0777), 0);
  assert_int_equal(chmod(target, 0777), 0);
  assert_int_equal(chown(target, SEC_NOBODY, SEC_NOBODY), 0);
  assert_int_equal(symlink(target, link), 0);
  assert_int_equal(lchown(link, SEC_NOBODY, SEC_NOBODY), 0);
  snprintf(reason, sizeof(reason), "socket directory %s is a symbolic link (owned by uid 65534), not a directory",
           link);
  expect_refusal(link, NULL, reason);
  assert_int_equal(unlink(link), 0);
  assert_int_equal(rmdir(target), 0);
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_directory_of_ours_others_can_write_is_refused),
      cmocka_unit_test(the_default_directory_made_open_beforehand_is_refused),
      cmocka_unit_test(a_socket_directly_in_tmp_is_refused),
      cmocka_unit_test(a_directory_of_another_uid_is_refused),
      cmocka_unit_test(a_symbolic_link_to_a_directory_of_another_uid_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
