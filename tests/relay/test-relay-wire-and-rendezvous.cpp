// The rendezvous and the control protocol over loopback: HOST:PORT parsing, connect/accept, message round
// trips, every wait bounded (a silent peer, nobody listening, a port taken), malformed frames and payloads,
// refusals, and the layout's encoding.
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "check.hpp"
#include "failures.hpp"
#include "messages.hpp"
#include "net.hpp"
#include "topic_layout.hpp"

using namespace wbrelay;

namespace {

template <class E, class F>
bool throws(F f, const char *containing = "") {
  try {
    f();
  } catch (const E &e) {
    if (std::strstr(e.what(), containing) != nullptr) return true;
    std::fprintf(stderr, "unexpected message: %s\n", e.what());
  }
  return false;
}

void endpoints() {
  Endpoint e = parse_endpoint("node0:29600");
  CHECK(e.host == "node0" && e.port == 29600);
  e = parse_endpoint("[::1]:80");
  CHECK(e.host == "::1" && e.port == 80);
  for (const char *bad : {"node0", ":80", "node0:", "node0:0", "node0:65536", "node0:8x", "node0:-1"}) {
    CHECK(throws<RelayError>([&] { parse_endpoint(bad); }, "--rendezvous"));
  }
}

struct Pair {
  Socket listener, client, server;
};

Pair connected() {
  Pair p;
  p.listener = listen_on(Endpoint{"127.0.0.1", 0});
  uint16_t port = local_port(p.listener);
  p.client = connect_until(Endpoint{"127.0.0.1", port}, Deadline::after(2000));
  p.server = accept_until(p.listener, Deadline::after(2000));
  CHECK(p.server.valid());
  return p;
}

void round_trip() {
  Pair p = connected();
  Writer w;
  w.u32(7).u64(1ull << 40).i64(-3).str("policy").bytes("\0\1", 2);
  send_message(p.client.fd(), MessageType::kHello, w, Deadline::after(1000));
  Message m = expect_message(p.server.fd(), MessageType::kHello, Deadline::after(1000));
  Reader r(m.payload);
  CHECK(r.u32() == 7 && r.u64() == (1ull << 40) && r.i64() == -3 && r.str(10) == "policy");
  CHECK(r.bytes(2).size() == 2 && r.done());
  CHECK(throws<PeerError>([&] { r.u32(); }, "truncated"));
  Reader r2(m.payload);
  r2.u32();
  r2.u64();
  r2.i64();
  CHECK(throws<PeerError>([&] { r2.str(3); }, "a field of 6 bytes"));  // over the caller's bound
  char data[5] = "abcd", back[5] = {};
  send_data(p.server.fd(), data, 4, Deadline::after(1000));
  read_data(p.client.fd(), back, 4, Deadline::after(1000));
  CHECK(std::memcmp(data, back, 4) == 0);
  send_data(p.server.fd(), data, 4, Deadline::after(1000));
  CHECK(throws<PeerError>([&] { read_data(p.client.fd(), back, 3, Deadline::after(1000)); }, "expected 3 bytes"));
}

void refusals_and_wrong_types() {
  Pair p = connected();
  send_refusal(p.server.fd(), "rank 1 is already connected", Deadline::after(1000));
  CHECK(throws<PeerError>([&] { expect_message(p.client.fd(), MessageType::kWelcome, Deadline::after(1000)); },
                          "refused: rank 1 is already connected"));
  send_message(p.server.fd(), MessageType::kAck, Writer().u64(1), Deadline::after(1000));
  CHECK(throws<PeerError>([&] { expect_message(p.client.fd(), MessageType::kWelcome, Deadline::after(1000)); },
                          "expected a welcome message, got a ack"));
}

void malformed_frames() {
  Pair p = connected();
  uint64_t junk[2] = {0x4745542f20485454ull, 0};  // "GET / HTTP"-like bytes
  send(p.client.fd(), junk, sizeof(junk), 0);
  CHECK(throws<PeerError>([&] { read_message(p.server.fd(), Deadline::after(1000)); }, "not a weightbus relay peer"));
  Pair q = connected();
  uint32_t frame[4] = {uint32_t(MessageType::kHello), 0, 0, 1};  // size 2^32 + ...: over the control limit
  send(q.client.fd(), frame, sizeof(frame), 0);
  CHECK(throws<PeerError>([&] { read_message(q.server.fd(), Deadline::after(1000)); }, "bytes"));
}

void waits_are_bounded() {
  Pair p = connected();
  int64_t start = now_ms();
  CHECK(throws<PeerError>([&] { read_message(p.server.fd(), Deadline::after(300)); }, "timed out"));
  int64_t waited = now_ms() - start;
  CHECK(waited >= 250 && waited < 2000);
  CHECK(!peer_gone(p.server.fd()));
  p.client = Socket();
  CHECK(peer_gone(p.server.fd()));
  CHECK(throws<PeerError>([&] { read_message(p.server.fd(), Deadline::after(1000)); }, "closed"));

  CHECK(!accept_until(p.listener, Deadline::after(100)).valid());  // nobody comes
  uint16_t port = local_port(p.listener);
  Socket listener = std::move(p.listener);
  listener = Socket();  // nobody listens there any more
  start = now_ms();
  CHECK(throws<RelayError>([&] { connect_until(Endpoint{"127.0.0.1", port}, Deadline::after(400)); }, "no relay source answers"));
  waited = now_ms() - start;
  CHECK(waited >= 350 && waited < 3000);
  Socket taken = listen_on(Endpoint{"127.0.0.1", 0});
  CHECK(throws<RelayError>([&] { listen_on(Endpoint{"127.0.0.1", local_port(taken)}); }, "cannot listen"));
  CHECK(throws<RelayError>([&] { connect_until(Endpoint{"no-such-host.invalid", 1}, Deadline::after(100)); }, "cannot resolve"));
}

void a_sink_connecting_before_the_source_listens() {
  Socket probe = listen_on(Endpoint{"127.0.0.1", 0});
  uint16_t port = local_port(probe);
  probe = Socket();
  std::thread late([port] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Socket l = listen_on(Endpoint{"127.0.0.1", port});
    Socket s = accept_until(l, Deadline::after(3000));
    send_message(s.fd(), MessageType::kWelcome, Writer().u64(1), Deadline::after(1000));
  });
  Socket c = connect_until(Endpoint{"127.0.0.1", port}, Deadline::after(3000));
  CHECK(expect_message(c.fd(), MessageType::kWelcome, Deadline::after(3000)).payload.size() == 8);
  late.join();
}

void layouts() {
  TopicLayout l;
  l.replicas = 2;
  TensorLayout a;
  a.name = "qkv";
  a.dtype = WB_DTYPE_BF16;
  a.ndim = 2;
  a.shape[0] = 96;
  a.shape[1] = 32;
  a.strides[0] = 32;
  a.strides[1] = 1;
  a.nbytes = 96 * 32 * 2;
  a.cuda = true;
  TensorLayout v = a;
  v.name = "q";
  v.is_view = true;
  v.parent = "qkv";
  v.byte_offset = 32 * 32 * 2;
  v.shape[0] = 32;
  l.tensors = {a, v};
  Writer w;
  encode_layout(l, w);
  Reader r(w.data());
  TopicLayout back = decode_layout(r);
  CHECK(layout_difference(l, back).empty());
  CHECK(back.tensors[1].parent == "qkv" && back.tensors[1].byte_offset == 2048 && back.tensors[0].cuda);
  TopicLayout other = l;
  other.tensors[1].byte_offset = 0;
  CHECK(layout_difference(other, l).find("tensor 'q' differs") != std::string::npos);
  other = l;
  other.replicas = 3;
  CHECK(layout_difference(other, l).find("replicas") == 0);
  other = l;
  other.tensors[0].name = "kv";
  CHECK(layout_difference(other, l) == "no tensor 'qkv' here");
  std::vector<uint8_t> cut(w.data().begin(), w.data().end() - 3);
  Reader rc(cut);
  CHECK(throws<PeerError>([&] { decode_layout(rc); }, "truncated"));
  Writer bad;
  bad.u32(9).u32(0);
  Reader rb(bad.data());
  CHECK(throws<PeerError>([&] { decode_layout(rb); }, "replicas"));
}

}  // namespace

int main() {
  endpoints();
  round_trip();
  refusals_and_wrong_types();
  malformed_frames();
  waits_are_bounded();
  a_sink_connecting_before_the_source_listens();
  layouts();
  std::printf("%s\n", g_failures == 0 ? "wire and rendezvous: all passed" : "wire and rendezvous: FAILED");
  return g_failures;
}
