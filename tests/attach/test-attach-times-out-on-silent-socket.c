/* A socket that accepts connections but never answers (a hung broker) makes wb_attach fail with WB_E_TIMEOUT
 * after wb_attach_options.timeout_ms, instead of hanging. */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fixture.h"

static void silent_listener_times_out(void **state) {
  (void)state;
  char dir[] = "/tmp/wbtest-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/silent.sock", dir);
  /* Listening but never accepting: connect completes through the backlog, no reply ever comes. */
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  assert_int_equal(listen(fd, 8), 0);

  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = addr.sun_path;
  o.timeout_ms = 200;
  wb_client *c = NULL;
  int64_t t0 = fx_now_ms();
  int rc = wb_attach(&o, &c);
  int64_t elapsed = fx_now_ms() - t0;
  close(fd);
  unlink(addr.sun_path);
  rmdir(dir);
  FX_EXPECT(rc, WB_E_TIMEOUT);
  if (elapsed < 150 || elapsed > 3000) {
    fail_msg("WB_E_TIMEOUT after %lld ms with timeout_ms = 200", (long long)elapsed);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(silent_listener_times_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
