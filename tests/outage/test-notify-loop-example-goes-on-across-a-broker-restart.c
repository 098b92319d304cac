/* docs/examples/notify-loop.c, the notify-fd loop that weightbus.h documents, follows a topic across a broker
 * restart: it prints the version it starts with, sleeps through the outage, and prints the versions published
 * through the successor until the last one, then exits 0. */
#include <fcntl.h>
#include <sys/wait.h>

#include "fixture.h"

/* The example's output so far (NUL-terminated, at most size - 1 bytes). */
static void read_output(const char *path, char *buf, size_t size) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static int output_shows(const char *path, const char *text, int timeout_ms) {
  char buf[4096];
  for (int64_t deadline = fx_now_ms() + timeout_ms;; fx_sleep_ms(10)) {
    read_output(path, buf, sizeof(buf));
    if (strstr(buf, text) != NULL) return 1;
    if (fx_now_ms() >= deadline) {
      fprintf(stderr, "notify-loop printed, without \"%s\":\n%s\n", text, buf);
      return 0;
    }
  }
}

static pid_t run_example(const fx_broker *b, const char *output, const char *last) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    execl(WB_NOTIFY_LOOP, WB_NOTIFY_LOOP, b->socket_path, "model", last, (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void example_follows_the_topic_across_a_restart(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  wb_topic *pub;
  FX_OK(fx_attach(b, "publisher", &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, 16, &pub));
  FX_OK(fx_publish(pub, 1, 16, NULL));
  char output[160];
  snprintf(output, sizeof(output), "%s/notify-loop.out", b->dir);
  pid_t example = run_example(b, output, "3");
  assert_true(output_shows(output, "version 1 (8 bytes of metadata)", 5000));

  fx_broker_kill9(b);
  fx_sleep_ms(300);
  assert_int_equal(fx_broker_restart(b), 0);
  FX_OK(fx_publish(pub, 1, 16, NULL)); /* the publisher resumes first */
  assert_true(output_shows(output, "version 2", 5000));
  FX_OK(fx_publish(pub, 1, 16, NULL));
  assert_int_equal(fx_wait_child(example, 10000), 0);
  assert_true(output_shows(output, "version 3 (8 bytes of metadata)", 0));
  FX_OK(wb_detach(c));
  unlink(output);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(example_follows_the_topic_across_a_restart, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
