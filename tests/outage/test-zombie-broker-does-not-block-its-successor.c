/* A broker killed with SIGKILL whose parent has not reaped it yet (a zombie, as under a container's PID 1
 * that never reaps) holds nothing: a successor with the same name adopts its segment, with its topics and
 * versions, and the dead broker's clients resume with it. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "fixture.h"

#define TENSORS 2
#define ELEMS 256
#define ALL ((1u << TENSORS) - 1)

/* The state letter of /proc/PID/stat ('Z' for a zombie), or '?' when it cannot be read. */
static char process_state(pid_t pid) {
  char path[64], line[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return '?';
  size_t n = fread(line, 1, sizeof(line) - 1, f);
  fclose(f);
  line[n] = '\0';
  const char *end_of_name = strrchr(line, ')'); /* the name in parentheses may hold spaces */
  return end_of_name != NULL && end_of_name[1] == ' ' ? end_of_name[2] : '?';
}

/* SIGKILL without waitpid: the broker stays a zombie until the test reaps it. Returns its pid. */
static pid_t kill_leaving_a_zombie(fx_broker *b) {
  pid_t pid = b->pid;
  assert_int_equal(kill(pid, SIGKILL), 0);
  char state = '?';
  for (int64_t deadline = fx_now_ms() + 5000; fx_now_ms() < deadline; fx_sleep_ms(5)) {
    if ((state = process_state(pid)) == 'Z') break;
  }
  if (state != 'Z') fail_msg("broker %d is in state '%c' after SIGKILL, expected a zombie ('Z')", (int)pid, state);
  b->pid = 0; /* the fixture would reap it: the successor must start beside the zombie */
  return pid;
}

static void successor_adopts_a_zombies_segment(void **state) {
  fx_broker *b = *state;
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  FX_OK(fx_attach(b, "publisher", &pc));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(fx_create_topic(pc, "model", 2, TENSORS, ELEMS, &pub));
  FX_OK(fx_publish(pub, ALL, ELEMS, NULL));
  FX_OK(wb_topic_open(rc, "model", &reader));

  pid_t zombie = kill_leaving_a_zombie(b);
  if (fx_broker_restart(b) != 0) fail_msg("no successor started beside the zombie broker %d", (int)zombie);
  assert_int_equal(process_state(zombie), 'Z'); /* still unreaped while the successor serves */

  wb_client *nc;
  wb_topic *again;
  uint64_t v = 0;
  FX_OK(fx_attach(b, "new reader", &nc));
  FX_OK(wb_topic_open(nc, "model", &again));
  FX_OK(wb_topic_latest(again, &v));
  assert_int_equal(v, 1);
  FX_OK(fx_publish(pub, ALL, ELEMS, &v)); /* the old publisher resumes with the successor */
  assert_int_equal(v, 2);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  for (uint32_t i = 0; i < TENSORS; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));

  FX_OK(wb_detach(nc));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
  int status;
  assert_int_equal(waitpid(zombie, &status, 0), zombie);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(successor_adopts_a_zombies_segment, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
