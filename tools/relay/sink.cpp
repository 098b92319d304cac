// A sink: connects to the source's rendezvous, creates (or checks) the topic in its node's broker from the
// source's layout, and publishes every version the source sends under the source's number and metadata. When
// the source goes away it says so, keeps the topic (readers go on reading the last version) and reconnects
// until the source is back or it is stopped.
#include <weightbus/weightbus.hpp>

#include <poll.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "bucket_plan.hpp"
#include "failures.hpp"
#include "messages.hpp"
#include "relay.hpp"
#include "topic_layout.hpp"

namespace wbrelay {

namespace {

class Sink {
 public:
  explicit Sink(const Options &o) : o_(o) {}
  ~Sink();
  int run();

 private:
  void session(Socket &s);
  void handshake(int fd);
  void open_topic(const TopicLayout &layout);
  void join_group(int fd, const Message &m);
  void receive_version(int fd, const Message &m);
  bool wait_readable(int fd);
  uint64_t latest() const;

  Options o_;
  std::optional<weightbus::Client> client_;  // attached in run()
  weightbus::Topic topic_;
  TopicLayout layout_;
  std::unique_ptr<Transport> transport_;
  uint64_t bucket_ = 0;
  bool joined_ = false;
};

Sink::~Sink() {
  if (transport_) transport_->leave();
}

uint64_t Sink::latest() const {
  uint64_t v = 0;
  if (topic_) v = doing("wb_topic_latest", [&] { return topic_.latest(); });
  return v;
}

// First contact creates the topic from the source's layout (on GPU 0 of this process when the source's
// tensors are CUDA); later contacts, and a topic left by an earlier sink, must have the same layout.
void Sink::open_topic(const TopicLayout &layout) {
  if (!topic_) {
    topic_ = doing("creating topic '" + o_.topic + "' here", [&] { return client_->create(o_.topic, layout.replicas); });
  }
  if (latest() == 0) {  // not sealed yet: allocating the same tensors again is accepted
    create_tensors(topic_, layout, 0);
    layout_ = layout;
    return;
  }
  TopicLayout here;
  {
    weightbus::Snapshot s = doing("leasing the local topic", [&] { return topic_.acquire(0, o_.timeout_ms); });
    here = read_layout(topic_, s);
  }
  std::string diff = layout_difference(here, layout);
  if (!diff.empty()) throw RelayError(kExitFailure, "topic '" + o_.topic + "' here has another layout than the source's: " + diff);
  layout_ = layout;
}

void Sink::handshake(int fd) {
  Deadline deadline = Deadline::after(o_.timeout_ms);
  Writer hello;
  hello.u64(kMagic).u32(kProtocol).u32(o_.rank).u32(o_.world).str(o_.topic).str(o_.transport);
  send_message(fd, MessageType::kHello, hello, deadline);
  Message m = read_message(fd, deadline);
  if (m.type == MessageType::kRefuse) throw RelayError(kExitRendezvous, "the source refused this sink: " + Reader(m.payload).str(4096));
  if (m.type != MessageType::kWelcome) throw PeerError(std::string("expected a welcome, got a ") + message_name(m.type));
  Reader r(m.payload);
  uint64_t bucket = r.u64();
  if (bucket == 0) throw PeerError("malformed welcome: bucket size 0");
  TopicLayout layout = decode_layout(r);
  try {
    open_topic(layout);
  } catch (const RelayError &e) {
    send_refusal(fd, e.what(), deadline);
    throw;
  }
  if (!transport_ || bucket != bucket_) {
    transport_.reset();  // its buffers first
    Options with = o_;
    with.bucket = bucket;
    transport_ = make_transport(with, 0);
    bucket_ = bucket;
  }
  send_message(fd, MessageType::kReady, Writer().u64(latest()), deadline);
}

void Sink::join_group(int fd, const Message &m) {
  Reader r(m.payload);
  GroupSpec g;
  g.generation = r.u64();
  g.nranks = r.u32();
  g.rank = r.u32();
  std::vector<uint8_t> token = r.bytes(4096);
  g.token.assign(token.begin(), token.end());
  g.peers = {fd};
  transport_->leave();
  joined_ = false;
  Deadline deadline = Deadline::after(o_.timeout_ms);
  transport_->join(g, deadline);
  joined_ = true;
  send_message(fd, MessageType::kJoined, Writer().u64(g.generation), deadline);
}

void Sink::receive_version(int fd, const Message &m) {
  if (!joined_) throw PeerError("a version before any group");
  Reader r(m.payload);
  uint64_t v = r.u64();
  r.u64();  // generation: one connection serves one group at a time
  bool broadcast = r.u32() != 0;
  uint64_t bucket = r.u64();
  std::vector<uint8_t> metadata = r.bytes(WB_METADATA_MAX);
  uint32_t count = r.u32();
  if (bucket != bucket_) throw PeerError("a version in buckets of another size");
  weightbus::Update update = doing("beginning version " + std::to_string(v), [&] { return topic_.begin(o_.timeout_ms); });
  doing("numbering the update " + std::to_string(v), [&] { update.set_version(v); });
  std::vector<uint64_t> sizes;
  BucketIo io;
  for (uint32_t k = 0; k < count; ++k) {
    std::string name = r.str(WB_NAME_MAX);
    const wb_tensor_info info =
        doing("tensor '" + name + "' of version " + std::to_string(v), [&] { return update.tensor(name); });
    sizes.push_back(info.nbytes);
    io.base.push_back(static_cast<char *>(info.data));
  }
  std::vector<Bucket> buckets = plan_buckets(sizes, bucket_);
  io.buckets = &buckets;
  transport_->receive(io, broadcast, Deadline::after(o_.timeout_ms));
  Message sent = expect_message(fd, MessageType::kSent, Deadline::after(o_.timeout_ms));
  if (Reader(sent.payload).u64() != v) throw PeerError("the source finished another version than " + std::to_string(v));
  const std::string metadata_text(metadata.begin(), metadata.end());
  const uint64_t published =
      doing("publishing version " + std::to_string(v), [&] { return update.publish(metadata_text); });
  send_message(fd, MessageType::kAck, Writer().u64(published), Deadline::after(o_.timeout_ms));
}

// Waits for the source's next message, waking up to notice a stop signal; false once stopped.
bool Sink::wait_readable(int fd) {
  while (!g_stop) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) > 0) return true;
  }
  return false;
}

void Sink::session(Socket &s) {
  handshake(s.fd());
  log_line("rank " + std::to_string(o_.rank) + " joined the source at " + o_.rendezvous.text() + ", holding version " +
           std::to_string(latest()));
  while (wait_readable(s.fd())) {
    Message m = read_message(s.fd(), Deadline::after(o_.timeout_ms));
    if (m.type == MessageType::kGroup) {
      join_group(s.fd(), m);
    } else if (m.type == MessageType::kVersion) {
      receive_version(s.fd(), m);
    } else {
      throw PeerError(std::string("unexpected ") + message_name(m.type) + " message");
    }
  }
}

int Sink::run() {
  wb_attach_options ao = WB_ATTACH_OPTIONS_INIT;
  ao.socket_path = o_.socket.empty() ? nullptr : o_.socket.c_str();
  ao.broker_name = o_.broker_name.empty() ? nullptr : o_.broker_name.c_str();
  ao.client_name = "relay-sink";
  client_ = doing("attaching to the local broker", [&] { return weightbus::Client(&ao); });
  bool connected_once = false;
  while (!g_stop) {
    Socket s;
    try {
      s = connect_until(o_.rendezvous, Deadline::after(o_.timeout_ms));
    } catch (const RelayError &) {
      if (!connected_once) throw;
      continue;  // the source is still away: keep serving and keep trying
    }
    connected_once = true;
    try {
      session(s);
    } catch (const PeerError &e) {
      if (transport_) transport_->leave();
      joined_ = false;
      log_line("lost the source at " + o_.rendezvous.text() + " (" + e.what() + "); serving version " +
               std::to_string(latest()) + " and reconnecting");
    }
  }
  return 0;
}

}  // namespace

int run_sink(const Options &o) {
  Sink s(o);
  return s.run();
}

}  // namespace wbrelay
