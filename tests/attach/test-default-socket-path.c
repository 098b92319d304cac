/* wb_default_socket_path resolves $WEIGHTBUS_SOCKET, then $XDG_RUNTIME_DIR/weightbus/<broker>.sock, then
 * /tmp/weightbus-<uid>/<broker>.sock, with the broker name from the argument, $WEIGHTBUS_NAME or "default". */
#include <stdlib.h>

#include "fixture.h"

static int clear_environment(void **state) {
  (void)state;
  unsetenv("WEIGHTBUS_SOCKET");
  unsetenv("WEIGHTBUS_NAME");
  unsetenv("XDG_RUNTIME_DIR");
  return 0;
}

static void explicit_socket_wins(void **state) {
  (void)state;
  char buf[256];
  setenv("WEIGHTBUS_SOCKET", "/somewhere/else.sock", 1);
  setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
  FX_OK(wb_default_socket_path("foo", buf, sizeof(buf)));
  assert_string_equal(buf, "/somewhere/else.sock");
}

static void runtime_dir_then_tmp(void **state) {
  (void)state;
  char buf[256], want[256];
  setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
  FX_OK(wb_default_socket_path("foo", buf, sizeof(buf)));
  assert_string_equal(buf, "/run/user/42/weightbus/foo.sock");
  unsetenv("XDG_RUNTIME_DIR");
  FX_OK(wb_default_socket_path("foo", buf, sizeof(buf)));
  snprintf(want, sizeof(want), "/tmp/weightbus-%u/foo.sock", (unsigned)getuid());
  assert_string_equal(buf, want);
}

static void broker_name_from_environment_or_default(void **state) {
  (void)state;
  char buf[256], want[256];
  FX_OK(wb_default_socket_path(NULL, buf, sizeof(buf)));
  snprintf(want, sizeof(want), "/tmp/weightbus-%u/default.sock", (unsigned)getuid());
  assert_string_equal(buf, want);
  setenv("WEIGHTBUS_NAME", "jobx", 1);
  FX_OK(wb_default_socket_path(NULL, buf, sizeof(buf)));
  snprintf(want, sizeof(want), "/tmp/weightbus-%u/jobx.sock", (unsigned)getuid());
  assert_string_equal(buf, want);
  FX_OK(wb_default_socket_path("explicit", buf, sizeof(buf))); /* the argument beats the environment */
  snprintf(want, sizeof(want), "/tmp/weightbus-%u/explicit.sock", (unsigned)getuid());
  assert_string_equal(buf, want);
}

static void small_or_missing_buffer(void **state) {
  (void)state;
  char buf[8];
  setenv("WEIGHTBUS_SOCKET", "/a/path/longer/than/eight.sock", 1);
  FX_EXPECT(wb_default_socket_path("foo", buf, sizeof(buf)), WB_E_SIZE);
  FX_EXPECT(wb_default_socket_path("foo", NULL, 64), WB_E_INVAL);
  FX_EXPECT(wb_default_socket_path("foo", buf, 0), WB_E_INVAL);
  /* Exactly fitting (path + NUL) is fine. */
  setenv("WEIGHTBUS_SOCKET", "/a.sock", 1);
  FX_OK(wb_default_socket_path("foo", buf, sizeof(buf)));
  assert_string_equal(buf, "/a.sock");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(explicit_socket_wins, clear_environment, clear_environment),
      cmocka_unit_test_setup_teardown(runtime_dir_then_tmp, clear_environment, clear_environment),
      cmocka_unit_test_setup_teardown(broker_name_from_environment_or_default, clear_environment, clear_environment),
      cmocka_unit_test_setup_teardown(small_or_missing_buffer, clear_environment, clear_environment),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
