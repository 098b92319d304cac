// Subscribe takes only a pipe's write end, and the broker makes it non-blocking: a reader that never drains
// its notify pipe (even one it left blocking and filled) cannot stall the broker's write and every client.
#include <fcntl.h>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace proto = wb::proto;

namespace {

int attach_raw(int sock) {
  std::vector<uint32_t> fields = wb::shm::fingerprint_words();
  flatbuffers::FlatBufferBuilder b;
  int fds = 0;
  int rc = raw::send_body(sock, b, proto::CreateAttachDirect(b, wb::shm::kLayoutVersion, &fields, 1, "raw"), &fds);
  return rc == WB_OK && fds == 1 ? WB_OK : rc;
}

int subscribe(int sock, int fd) {
  flatbuffers::FlatBufferBuilder b;
  return raw::send_body(sock, b, proto::CreateSubscribe(b, 0), nullptr, &fd, 1);
}

void descriptors_other_than_a_pipe_write_end_are_refused(void **state) {
  int sock = raw::connect_to(static_cast<fx_broker *>(*state)->socket_path);
  assert_int_equal(attach_raw(sock), WB_OK);
  flatbuffers::FlatBufferBuilder b;
  assert_int_equal(raw::send_body(sock, b, proto::CreateCreateTopicDirect(b, "t", 2)), WB_OK);
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  assert_int_equal(subscribe(sock, null_fd), WB_E_INVAL);
  int ends[2];
  assert_int_equal(pipe2(ends, O_CLOEXEC), 0);
  assert_int_equal(subscribe(sock, ends[0]), WB_E_INVAL);  // the read end
  assert_int_equal(subscribe(sock, ends[1]), WB_OK);
  close(null_fd);
  close(ends[0]);
  close(ends[1]);
  close(sock);
}

void a_full_blocking_pipe_does_not_stall_the_broker(void **state) {
  fx_broker *broker = static_cast<fx_broker *>(*state);
  int sock = raw::connect_to(broker->socket_path);
  assert_int_equal(attach_raw(sock), WB_OK);
  flatbuffers::FlatBufferBuilder b;
  assert_int_equal(raw::send_body(sock, b, proto::CreateCreateTopicDirect(b, "t", 2)), WB_OK);
  int ends[2];
  assert_int_equal(pipe2(ends, O_CLOEXEC), 0);  // blocking
  int capacity = fcntl(ends[1], F_GETPIPE_SZ);
  std::vector<char> fill(size_t(capacity), 'x');
  assert_int_equal(write(ends[1], fill.data(), fill.size()), capacity);  // full: one more byte would block
  assert_int_equal(subscribe(sock, ends[1]), WB_OK);
  for (int i = 0; i < 3; ++i) {  // one-way notices: the broker writes into the full pipe
    flatbuffers::FlatBufferBuilder p;
    p.Finish(proto::CreateMessage(p, 2, proto::Body::Published, proto::CreatePublished(p, 0, 1).Union()));
    assert_int_equal(wb::wire::send(sock, p.GetBufferPointer(), p.GetSize()), WB_OK);
  }
  flatbuffers::FlatBufferBuilder o;  // answered: the broker did not block in the write
  assert_int_equal(raw::send_body(sock, o, proto::CreateOpenTopicDirect(o, "t")), WB_OK);
  wb_client *c;
  FX_OK(fx_attach(broker, "after", &c));
  FX_OK(wb_detach(c));
  close(ends[0]);
  close(ends[1]);
  close(sock);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(descriptors_other_than_a_pipe_write_end_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_full_blocking_pipe_does_not_stall_the_broker, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
