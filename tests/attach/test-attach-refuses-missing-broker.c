/* wb_attach with nobody listening at the socket path fails at once with WB_E_CONNECT (it does not wait for
 * its timeout), whether the path names nothing, a stale socket file, or comes from $WEIGHTBUS_SOCKET. */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fixture.h"

typedef struct dir_state {
  char dir[64];
  char path[96]; /* fits sockaddr_un.sun_path */
} dir_state;

static int make_dir(void **state) {
  dir_state *d = calloc(1, sizeof(*d));
  snprintf(d->dir, sizeof(d->dir), "/tmp/wbtest-XXXXXX");
  if (mkdtemp(d->dir) == NULL) return -1;
  snprintf(d->path, sizeof(d->path), "%s/nobody.sock", d->dir);
  *state = d;
  return 0;
}

static int remove_dir(void **state) {
  dir_state *d = *state;
  unlink(d->path);
  rmdir(d->dir);
  free(d);
  return 0;
}

static void expect_connect_quickly(const wb_attach_options *o) {
  wb_client *c = NULL;
  int64_t t0 = fx_now_ms();
  FX_EXPECT(wb_attach(o, &c), WB_E_CONNECT);
  int64_t elapsed = fx_now_ms() - t0;
  if (elapsed >= 1000) fail_msg("WB_E_CONNECT took %lld ms; a refused connect needs no waiting", (long long)elapsed);
}

static void missing_socket_file_is_connect(void **state) {
  dir_state *d = *state;
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = d->path;
  expect_connect_quickly(&o);
}

static void stale_socket_file_is_connect(void **state) {
  /* A broker that died leaves its socket file: bound once, nobody listening. */
  dir_state *d = *state;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  close(fd);

  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = d->path;
  expect_connect_quickly(&o);
}

static void socket_from_environment_is_connect(void **state) {
  dir_state *d = *state;
  setenv("WEIGHTBUS_SOCKET", d->path, 1);
  expect_connect_quickly(NULL);
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT; /* socket_path NULL: the environment decides */
  expect_connect_quickly(&o);
  unsetenv("WEIGHTBUS_SOCKET");
}

static void null_out_is_inval(void **state) {
  dir_state *d = *state;
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = d->path;
  FX_EXPECT(wb_attach(&o, NULL), WB_E_INVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(missing_socket_file_is_connect, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(stale_socket_file_is_connect, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(socket_from_environment_is_connect, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(null_out_is_inval, make_dir, remove_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
