/* Least privilege: the broker creates its socket and segment with mode 0600, and a client of another uid
 * that reaches the socket anyway is refused with WB_E_PERM (SO_PEERCRED), while the broker keeps serving. */
#include <fcntl.h>
#include <sys/stat.h>

#include "fixture.h"

static void socket_and_segment_are_private(void **state) {
  fx_broker *b = *state;
  struct stat st;
  char shm[200];
  assert_int_equal(stat(b->socket_path, &st), 0);
  if ((st.st_mode & 0777) != 0600) fail_msg("socket mode is %03o, expected 600", (unsigned)(st.st_mode & 0777));
  snprintf(shm, sizeof(shm), "/dev/shm/weightbus-%u-%s", (unsigned)getuid(), b->name);
  assert_int_equal(stat(shm, &st), 0);
  if ((st.st_mode & 0777) != 0600) fail_msg("segment mode is %03o, expected 600", (unsigned)(st.st_mode & 0777));
}

static int attach_as_nobody(void *arg) {
  const fx_broker *b = arg;
  CHILD_CHECK(setgid(65534) == 0 && setuid(65534) == 0);
  wb_client *c;
  CHILD_EXPECT(fx_attach(b, "intruder", &c), WB_E_PERM);
  return 0;
}

static void other_uid_is_refused(void **state) {
  fx_broker *b = *state;
  if (getuid() != 0) skip(); /* needs root to become another uid */
  /* Open the way to the socket on purpose, so that only the broker's own check stands. */
  assert_int_equal(chmod(b->dir, 0755), 0);
  assert_int_equal(chmod(b->socket_path, 0666), 0);
  pid_t child = fx_spawn(attach_as_nobody, b);
  assert_true(child > 0);
  int status = fx_wait_child(child, 10000);
  if (status != 0) fail_msg("the other-uid child exited with %d (see its stderr)", status);
  wb_client *c; /* and the broker still serves its own uid */
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(socket_and_segment_are_private, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(other_uid_is_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
