/* weightbusd --foreground exits 0 on SIGTERM and on SIGINT, also with clients attached, and removes its
 * socket; clients then see WB_E_BROKER_GONE. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fixture.h"

static void exits_zero_and_removes_socket(fx_broker *b, int sig) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, 8, &t));
  if (fx_broker_signal_and_wait(b, sig, 5000) != 0) fail_msg("broker still running 5 s after signal %d", sig);
  if (!WIFEXITED(b->exit_status) || WEXITSTATUS(b->exit_status) != 0) {
    fail_msg("broker ended with status 0x%x after signal %d, expected exit code 0", (unsigned)b->exit_status, sig);
  }
  struct stat st;
  if (stat(b->socket_path, &st) == 0) fail_msg("socket %s still exists after the broker exited", b->socket_path);
  uint64_t v;
  FX_EXPECT(wb_topic_wait(t, 0, 2000, &v), WB_E_BROKER_GONE);
  FX_OK(wb_detach(c));
}

static void sigterm(void **state) { exits_zero_and_removes_socket(*state, SIGTERM); }
static void sigint(void **state) { exits_zero_and_removes_socket(*state, SIGINT); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(sigterm, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(sigint, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
