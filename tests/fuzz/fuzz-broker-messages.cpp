// libFuzzer harness: control messages from two clients into the broker's real dispatch (broker/dispatcher.cpp
// and its handlers), on a private segment made afresh for every input, so that a finding replays alone.
// Beyond what ASan and UBSan catch: every message gets at most one reply, every reply is a Reply with a WB_*
// code, and every refusal carries a message saying why.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dispatcher.hpp"
#include "error.hpp"
#include "log.hpp"
#include "protocol_generated.h"
#include "session.hpp"

namespace broker = wb::broker;
namespace proto = wb::proto;

namespace {

broker::Options make_options() {
  broker::Options o;
  o.name = "fuzz-" + std::to_string(getpid());
  o.caps = wb::shm::Capacities{4, 32, 8, 4, 4, 4, 8};
  o.per_client = broker::Quota{3, 16, 6, 1 << 20, 3, 12};  // within reach, so that the limits are fuzzed too
  return o;
}

[[noreturn]] void broken(const char *what) {
  fprintf(stderr, "fuzz-broker-messages: %s\n", what);
  abort();
}

// Reads what the broker answered to one message.
void check_replies(int sock) {
  int replies = 0;
  for (;;) {
    wb::wire::Received got;
    int rc = wb::wire::receive(sock, 0, &got);
    wb::wire::close_all(got.fds);
    if (rc == WB_E_TIMEOUT) return;
    if (rc != WB_OK) broken("an unreadable reply");
    if (++replies > 1) broken("more than one reply to one message");
    flatbuffers::Verifier verifier(got.data.data(), got.data.size());
    if (!verifier.VerifyBuffer<proto::Message>()) broken("a malformed reply");
    const proto::Reply *reply = proto::GetMessage(got.data.data())->body_as_Reply();
    if (reply == nullptr) broken("an answer that is not a Reply");
    if (reply->code() > WB_OK || reply->code() < WB_E_LAYOUT) broken("a reply code that is no WB_* code");
    if (reply->code() != WB_OK && (reply->message() == nullptr || reply->message()->size() == 0)) {
      broken("a refusal without a message");
    }
  }
}

// The descriptors a record carries: pipe write ends (their read ends kept open in keep) or /dev/null.
std::vector<int> make_fds(const wb::fuzz::Record &r, std::vector<int> *keep) {
  std::vector<int> fds;
  for (int i = 0; i < r.fds; ++i) {
    int ends[2];
    if (r.dev_null) {
      fds.push_back(open("/dev/null", O_RDWR | O_CLOEXEC));
    } else if (pipe2(ends, O_CLOEXEC) == 0) {
      keep->push_back(ends[0]);
      fds.push_back(ends[1]);
    }
  }
  return fds;
}

struct Peer {
  broker::Client client;
  int other_end = -1;  // where the replies arrive
  bool gone = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  signal(SIGPIPE, SIG_IGN);  // as weightbusd does
  broker::set_log_level(broker::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const broker::Options options = make_options();
  broker::Dispatcher dispatcher(options);
  bool adopted;
  if (dispatcher.open_registry(&adopted) != WB_OK) broken(wb_last_error());
  Peer peers[wb::fuzz::kClients];
  for (Peer &p : peers) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) broken("socketpair");
    p.client.fd = sv[0];
    p.other_end = sv[1];
    p.client.pid = uint32_t(getpid());
    p.client.uid = uint32_t(getuid());
  }
  std::vector<int> read_ends;
  for (const wb::fuzz::Record &r : wb::fuzz::parse_records(data, size)) {
    Peer &p = peers[r.client];
    if (p.gone) continue;
    wb::wire::Received msg;
    msg.data.assign(r.data, r.data + r.size);
    msg.fds = make_fds(r, &read_ends);
    wb::clear_error();  // so that a refusal without its own message shows as one
    dispatcher.handle(&p.client, msg);
    wb::wire::close_all(msg.fds);
    check_replies(p.other_end);
    if (p.client.hang_up != nullptr) {
      dispatcher.client_gone(&p.client, p.client.hang_up);
      p.gone = true;
    }
  }
  for (Peer &p : peers) {
    if (!p.gone) dispatcher.client_gone(&p.client, "end of input");
    close(p.client.fd);
    close(p.other_end);
  }
  for (int fd : read_ends) close(fd);
  return 0;
}
