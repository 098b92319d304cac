/* A thread cancelled (pthread_cancel) while it blocks inside the library unwinds out of it and ends: the
 * handlers that keep exceptions from leaving the library let glibc's cancellation through. Swallowing it, as a
 * bare catch (...) does, aborts the process ("FATAL: exception not rethrown"). The call here is wb_attach to a
 * socket that never answers, without a timeout: it blocks in poll(), a cancellation point. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fixture.h"

static void *attach_forever(void *arg) {
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = arg;
  o.timeout_ms = -1;
  wb_client *c = NULL;
  wb_attach(&o, &c);
  return NULL; /* not reached: it blocks until cancelled */
}

static void cancelled_attach_unwinds(void **state) {
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

  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, attach_forever, addr.sun_path), 0);
  fx_sleep_ms(200); /* long enough to block in the library; cancelling earlier is fine too */
  assert_int_equal(pthread_cancel(thread), 0);
  void *result = NULL;
  assert_int_equal(pthread_join(thread, &result), 0);
  close(fd);
  unlink(addr.sun_path);
  rmdir(dir);
  assert_ptr_equal(result, PTHREAD_CANCELED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancelled_attach_unwinds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
