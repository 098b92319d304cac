/* The library never connects through a socket directory another uid controls, whichever way the path was
 * given (wb_attach_options.socket_path, WEIGHTBUS_SOCKET, the default under XDG_RUNTIME_DIR): a directory
 * others can write, one of another uid or a symbolic link is WB_E_PERM naming it, before anything is sent.
 * Here the directory is the one of a live broker of ours, opened up under it: the broker itself is fine, the
 * way to it is not. */
#include <stdlib.h>
#include <sys/stat.h>

#include "fixture.h"
#include "security.h"

static void attach_is_refused(const char *socket_path, const char *reason) {
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = socket_path;
  wb_client *c = (wb_client *)1;
  FX_EXPECT(wb_attach(&o, &c), WB_E_PERM);
  assert_null(c);
  sec_expect_text(wb_last_error(), reason, NULL);
}

static void attach_works(const char *socket_path) {
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = socket_path;
  wb_client *c;
  FX_OK(wb_attach(&o, &c));
  FX_OK(wb_detach(c));
}

static void a_directory_others_can_write_is_refused(void **state) {
  fx_broker *b = *state;
  char reason[256];
  assert_int_equal(chmod(b->dir, 0777), 0);
  snprintf(reason, sizeof(reason), "socket directory %s (uid %u, mode 0777) is writable by others", b->dir,
           geteuid());
  attach_is_refused(b->socket_path, reason);
  assert_int_equal(setenv("WEIGHTBUS_SOCKET", b->socket_path, 1), 0); /* the default path, explicitly */
  attach_is_refused(NULL, reason);
  unsetenv("WEIGHTBUS_SOCKET");
  assert_int_equal(chmod(b->dir, 0720), 0);
  attach_is_refused(b->socket_path, "is writable by its group");
  assert_int_equal(chmod(b->dir, 0700), 0);
  attach_works(b->socket_path);
}

/* No socket_path nor WEIGHTBUS_SOCKET: $XDG_RUNTIME_DIR/weightbus/<name>.sock, its directory opened up. */
static void the_default_directory_opened_up_is_refused(void **state) {
  fx_broker *b = *state;
  char xdg[64], dir[128], sock[256];
  assert_int_equal(sec_temp_dir(xdg), 0);
  snprintf(dir, sizeof(dir), "%s/weightbus", xdg);
  snprintf(sock, sizeof(sock), "%s/%s.sock", dir, b->name);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(link(b->socket_path, sock), 0); /* the broker's socket, at the default path */
  unsetenv("WEIGHTBUS_SOCKET");
  assert_int_equal(setenv("XDG_RUNTIME_DIR", xdg, 1), 0);
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.broker_name = b->name;
  wb_client *c;
  FX_OK(wb_attach(&o, &c));
  FX_OK(wb_detach(c));
  assert_int_equal(chmod(dir, 0777), 0);
  FX_EXPECT(wb_attach(&o, &c), WB_E_PERM);
  sec_expect_text(wb_last_error(), dir, "mode 0777) is writable by others", NULL);
  unsetenv("XDG_RUNTIME_DIR");
  assert_int_equal(unlink(sock), 0);
  assert_int_equal(rmdir(dir), 0);
  assert_int_equal(rmdir(xdg), 0);
}

static void a_symbolic_link_is_refused(void **state) {
  fx_broker *b = *state;
  char dir[64], link_path[128], sock[256], reason[256];
  assert_int_equal(sec_temp_dir(dir), 0);
  snprintf(link_path, sizeof(link_path), "%s/link", dir);
  snprintf(sock, sizeof(sock), "%s/broker.sock", link_path);
  assert_int_equal(symlink(b->dir, link_path), 0);
  snprintf(reason, sizeof(reason), "socket directory %s is a symbolic link", link_path);
  attach_is_refused(sock, reason);
  assert_int_equal(unlink(link_path), 0);
  assert_int_equal(rmdir(dir), 0);
}

static void a_directory_of_another_uid_is_refused(void **state) {
  fx_broker *b = *state;
  if (!sec_can_be_nobody()) skip();
  char reason[256];
  assert_int_equal(chown(b->dir, SEC_NOBODY, SEC_NOBODY), 0);
  snprintf(reason, sizeof(reason), "socket directory %s is owned by uid 65534 (mode 0700), not by uid 0", b->dir);
  attach_is_refused(b->socket_path, reason);
  assert_int_equal(chown(b->dir, 0, 0), 0);
  attach_works(b->socket_path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_directory_others_can_write_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(the_default_directory_opened_up_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_symbolic_link_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_directory_of_another_uid_is_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
