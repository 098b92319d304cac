// A control message is one datagram of at most 64 KiB with at most 4 descriptors: a larger one is answered
// with WB_E_SIZE (more descriptors: WB_E_PROTOCOL) naming the limit, and the connection keeps working.
#include <fcntl.h>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace proto = wb::proto;

namespace {

// Sends size bytes as one datagram without wire::send's own limit; returns the reply's code.
int send_datagram(int sock, size_t size, const int *fds = nullptr, int nfds = 0) {
  std::vector<uint8_t> bytes(size, 0x5a);
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != ssize_t(size)) return WB_E_IO;
  wb::wire::Received got;
  int rc = wb::wire::receive(sock, 5000, &got);
  if (rc != WB_OK) return rc;
  flatbuffers::Verifier verifier(got.data.data(), got.data.size());
  if (!verifier.VerifyBuffer<proto::Message>()) return WB_E_PROTOCOL;
  const proto::Reply *reply = proto::GetMessage(got.data.data())->body_as_Reply();
  if (reply == nullptr) return WB_E_PROTOCOL;
  if (reply->message() != nullptr) print_message("broker: %s\n", reply->message()->c_str());
  if (reply->code() == WB_E_SIZE && strstr(reply->message()->c_str(), "65536") == nullptr) return WB_E_INVAL;
  return reply->code();
}

void still_answers(int sock) {
  flatbuffers::FlatBufferBuilder b;
  assert_int_equal(raw::send_body(sock, b, proto::CreateOpenTopicDirect(b, "none")), WB_E_PROTOCOL);  // not attached
}

void a_datagram_over_64_kib_is_refused_with_size(void **state) {
  int sock = raw::connect_to(static_cast<fx_broker *>(*state)->socket_path);
  assert_true(sock >= 0);
  int sndbuf = 1 << 20;
  setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  assert_int_equal(send_datagram(sock, wb::wire::kMaxMessage + 1), WB_E_SIZE);
  assert_int_equal(send_datagram(sock, 150 * 1024), WB_E_SIZE);
  still_answers(sock);
  close(sock);
}

void more_than_four_descriptors_are_refused(void **state) {
  int sock = raw::connect_to(static_cast<fx_broker *>(*state)->socket_path);
  assert_true(sock >= 0);
  int fds[5];
  for (int &fd : fds) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_int_equal(send_datagram(sock, 64, fds, 5), WB_E_PROTOCOL);
  for (int fd : fds) close(fd);
  still_answers(sock);
  close(sock);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_datagram_over_64_kib_is_refused_with_size, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(more_than_four_descriptors_are_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
