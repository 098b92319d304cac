/* A client talks only to a broker of its own uid: after connecting, and before it sends anything, the library
 * reads the listener's credentials (SO_PEERCRED) and refuses another uid with WB_E_PERM naming it, so that an
 * impostor never sees a request nor hands over a forged segment, policy topic or metadata. Two impostors of
 * uid 65534: a listener made by hand whose socket sits in a directory of ours (only the credential check can
 * catch it), and a real weightbusd, reached first through its own directory (refused for that), then relayed
 * into one of ours. */
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "fixture.h"
#include "security.h"

typedef struct impostor {
  char path[128];
  uint32_t *listening;     /* shared: 1 once it listens */
  uint32_t *bytes_heard;   /* shared: what the client sent it (must stay 0) */
} impostor;

/* Binds while still root (the directory is root's), then becomes 65534 and listens: SO_PEERCRED reports the
 * listener's credentials as of listen(). */
static int impostor_main(void *arg) {
  impostor *im = arg;
  int sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, im->path);
  CHILD_CHECK(sock >= 0 && bind(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0);
  CHILD_CHECK(sec_become_nobody() == 0);
  CHILD_CHECK(listen(sock, 4) == 0);
  fx_set_word(im->listening, 1);
  int conn = accept(sock, NULL, NULL);
  CHILD_CHECK(conn >= 0);
  char buf[4096];
  ssize_t got = recv(conn, buf, sizeof(buf), 0); /* the client hangs up without a word */
  CHILD_CHECK(got >= 0);
  fx_set_word(im->bytes_heard, (uint32_t)got);
  return 0;
}

static void a_listener_of_another_uid_is_refused_before_a_word(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  char dir[64];
  assert_int_equal(sec_temp_dir(dir), 0);
  impostor *im = fx_shared_alloc(4096);
  snprintf(im->path, sizeof(im->path), "%s/broker.sock", dir);
  im->listening = (uint32_t *)((char *)im + 1024);
  im->bytes_heard = (uint32_t *)((char *)im + 2048);
  pid_t child = fx_spawn(impostor_main, im);
  assert_true(child > 0);
  assert_int_equal(fx_wait_word(im->listening, 1, 10000), 0);
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = im->path;
  wb_client *c;
  FX_EXPECT(wb_attach(&o, &c), WB_E_PERM);
  char pid_text[32];
  snprintf(pid_text, sizeof(pid_text), "(pid %d)", (int)child);
  sec_expect_text(wb_last_error(), im->path, pid_text, "runs as uid 65534, not as uid 0", NULL);
  assert_int_equal(fx_wait_child(child, 10000), 0);
  assert_int_equal(*im->bytes_heard, 0);
  unlink(im->path);
  fx_shared_free(im, 4096);
  assert_int_equal(rmdir(dir), 0);
}

static int wait_for_path(const char *path) {
  struct stat st;
  for (int i = 0; i < 1000; ++i, fx_sleep_ms(10)) {
    if (lstat(path, &st) == 0) return 0;
  }
  return -1;
}

static void a_real_broker_of_another_uid_is_refused_wherever_its_socket_is(void **state) {
  (void)state;
  if (!sec_can_be_nobody()) skip();
  char theirs[64], ours[64], their_sock[128], our_sock[128], name[64];
  assert_int_equal(sec_temp_dir(theirs), 0);
  assert_int_equal(sec_temp_dir(ours), 0);
  assert_int_equal(chown(theirs, SEC_NOBODY, SEC_NOBODY), 0);
  snprintf(their_sock, sizeof(their_sock), "%s/broker.sock", theirs);
  snprintf(our_sock, sizeof(our_sock), "%s/broker.sock", ours);
  snprintf(name, sizeof(name), "sec-impostor-%d", (int)getpid());
  pid_t broker = sec_start_broker(their_sock, name, 1);
  assert_true(broker > 0);
  if (wait_for_path(their_sock) != 0) fail_msg("the broker of uid 65534 did not listen at %s", their_sock);

  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = their_sock;
  wb_client *c;
  FX_EXPECT(wb_attach(&o, &c), WB_E_PERM); /* its directory is its own */
  sec_expect_text(wb_last_error(), theirs, "is owned by uid 65534", NULL);

  assert_int_equal(rename(their_sock, our_sock), 0); /* relayed: its socket in a directory of ours */
  o.socket_path = our_sock;
  FX_EXPECT(wb_attach(&o, &c), WB_E_PERM);
  sec_expect_text(wb_last_error(), our_sock, "runs as uid 65534, not as uid 0", NULL);

  /* Its socket appears a moment before it handles SIGTERM: it exits cleanly, or dies of the signal (its segment
   * is then removed here). */
  kill(broker, SIGTERM);
  int status = fx_wait_child(broker, 10000);
  if (status != 0 && status != 128 + SIGTERM) fail_msg("the broker of uid 65534 exited with %d", status);
  sec_remove_shm(SEC_NOBODY, name);
  unlink(our_sock);
  assert_int_equal(rmdir(theirs), 0);
  assert_int_equal(rmdir(ours), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_listener_of_another_uid_is_refused_before_a_word),
      cmocka_unit_test(a_real_broker_of_another_uid_is_refused_wherever_its_socket_is),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
