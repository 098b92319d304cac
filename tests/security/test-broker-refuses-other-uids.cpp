// Least privilege: the broker creates its socket and segment with mode 0600, and a process of another uid
// that reaches the socket anyway is refused: the library by its own checks before it sends anything
// (test-client-refuses-a-broker-of-another-uid covers the reverse), and the broker, for a process speaking the
// protocol by hand, with WB_E_PERM on its first message (SO_PEERCRED), while it keeps serving its own uid.
#include <fcntl.h>
#include <sys/stat.h>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
#include "security.h"
}

namespace proto = wb::proto;

namespace {

void socket_and_segment_are_private(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  struct stat st;
  char shm[256];
  assert_int_equal(stat(b->socket_path, &st), 0);
  if ((st.st_mode & 0777) != 0600) fail_msg("socket mode is %03o, expected 600", unsigned(st.st_mode & 0777));
  assert_int_equal(stat(sec_shm_path(shm, getuid(), b->name, ""), &st), 0);
  if ((st.st_mode & 0777) != 0600) fail_msg("segment mode is %03o, expected 600", unsigned(st.st_mode & 0777));
}

int attach_as_nobody(void *arg) {
  const fx_broker *b = static_cast<const fx_broker *>(arg);
  CHILD_CHECK(sec_become_nobody() == 0);
  wb_client *c;
  // The library's own check (its message, in the library's copy of the error state, is read by the tests of
  // tests/security/test-client-refuses-*): the directory is root's.
  CHILD_EXPECT(fx_attach(b, "intruder", &c), WB_E_PERM);
  int sock = raw::connect_to(b->socket_path);
  CHILD_CHECK(sock >= 0);
  std::vector<uint32_t> fields = wb::shm::fingerprint_words();
  flatbuffers::FlatBufferBuilder builder;
  int fds = 0;
  auto body = proto::CreateAttachDirect(builder, wb::shm::kLayoutVersion, &fields, uint32_t(getpid()), "intruder");
  CHILD_EXPECT(raw::send_body(sock, builder, body, &fds), WB_E_PERM);
  CHILD_CHECK(fds == 0);  // no segment
  char byte;
  CHILD_CHECK(recv(sock, &byte, 1, 0) == 0);  // and hung up
  close(sock);
  return 0;
}

void other_uid_is_refused(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  if (!sec_can_be_nobody()) skip();
  // Open the way to the socket on purpose, so that only the checks stand.
  assert_int_equal(chmod(b->dir, 0755), 0);
  assert_int_equal(chmod(b->socket_path, 0666), 0);
  pid_t child = fx_spawn(attach_as_nobody, b);
  assert_true(child > 0);
  int status = fx_wait_child(child, 10000);
  if (status != 0) fail_msg("the other-uid child exited with %d (see its stderr)", status);
  assert_int_equal(chmod(b->dir, 0700), 0);
  wb_client *c;  // and the broker still serves its own uid
  FX_OK(fx_attach(b, nullptr, &c));
  FX_OK(wb_detach(c));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(socket_and_segment_are_private, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(other_uid_is_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
