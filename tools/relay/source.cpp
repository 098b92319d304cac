// The source: rank 0. Listens at the rendezvous, admits sinks (hello, layout, ready), keeps them in one group
// of the transport, and relays each new version of the topic while holding a lease on it. Any failure of a
// sink during a group change or a transfer drops the whole group: the source closes every connection, the
// live sinks reconnect at once and report the version they hold, and the dead one is not waited for again.
#include <weightbus/weightbus.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <unistd.h>

#include "bookkeeping.hpp"
#include "failures.hpp"
#include "messages.hpp"
#include "relay.hpp"
#include "topic_layout.hpp"

namespace wbrelay {

namespace {

struct Member {
  uint32_t rank;
  Socket socket;
  uint64_t held;
};

// Whether the member's sink closed its connection (it died or left), named in the log when it did.
bool gone(const Member &m) {
  if (!peer_gone(m.socket.fd())) return false;
  log_line("rank " + std::to_string(m.rank) + " is gone");
  return true;
}

struct Roots {
  std::vector<uint32_t> index;     // topic index of each root tensor
  std::vector<std::string> names;  // parallel to index
  std::vector<uint64_t> nbytes;
};

Roots roots_of(const TopicLayout &layout) {
  Roots r;
  for (uint32_t i = 0; i < layout.tensors.size(); ++i) {
    if (layout.tensors[i].is_view) continue;
    r.index.push_back(i);
    r.names.push_back(layout.tensors[i].name);
    r.nbytes.push_back(layout.tensors[i].nbytes);
  }
  return r;
}

class Source {
 public:
  explicit Source(const Options &o) : o_(o) {}
  ~Source();
  int run();

 private:
  void open_topic();
  weightbus::Topic open_if_present();
  void wait_for_version(uint64_t after, int64_t timeout_ms);
  weightbus::Snapshot lease_latest();
  void admit_joiners();
  void admit(Socket s);
  void drop_dead_members();
  void form_group();
  void relay_latest();
  void send_transfer(const weightbus::Snapshot &s, uint64_t v, const Transfer &t, const std::vector<uint64_t> &written_by,
                     const std::vector<char *> &data);
  void reset(const std::string &why);
  Deadline peer_deadline() const { return Deadline::after(o_.timeout_ms); }

  Options o_;
  std::optional<weightbus::Client> client_;  // attached in run()
  weightbus::Topic topic_;
  TopicLayout layout_;
  Roots roots_;
  Writer welcome_;
  std::unique_ptr<Transport> transport_;
  Socket listener_;
  std::vector<Member> members_;  // in group order: member i is group rank i + 1
  uint64_t generation_ = 0;
  bool group_formed_ = false;
};

Source::~Source() {
  if (transport_) transport_->leave();
}

// The topic, or an empty handle while it does not exist.
weightbus::Topic Source::open_if_present() {
  try {
    return client_->open(o_.topic);
  } catch (const weightbus::Error &e) {
    if (e.code() != WB_E_NOT_FOUND) throw;
    return {};
  }
}

// Waits at most timeout_ms for a version after `after`; running out of time is no failure.
void Source::wait_for_version(uint64_t after, int64_t timeout_ms) {
  doing("waiting for a version of '" + o_.topic + "'", [&] {
    try {
      topic_.wait(after, timeout_ms);
    } catch (const weightbus::Error &e) {
      if (e.code() != WB_E_TIMEOUT) throw;
    }
  });
}

weightbus::Snapshot Source::lease_latest() {
  return doing("leasing the latest version of '" + o_.topic + "'", [&] { return topic_.acquire(0, o_.timeout_ms); });
}

// Waits for the topic and its first version (the relay may start before the trainer).
void Source::open_topic() {
  bool told = false;
  for (;;) {
    weightbus::Topic opened = doing("opening topic '" + o_.topic + "'", [&] { return open_if_present(); });
    if (opened) {
      topic_ = std::move(opened);
      if (doing("wb_topic_latest", [&] { return topic_.latest(); }) > 0) return;
    }
    if (!told) log_line("waiting for topic '" + o_.topic + "' and its first version");
    told = true;
    if (topic_) {
      wait_for_version(0, 200);
    } else {
      usleep(200000);
    }
    if (g_stop) throw RelayError(0, "stopped");
  }
}

void Source::admit(Socket s) {
  Deadline deadline = peer_deadline();
  Message m = expect_message(s.fd(), MessageType::kHello, deadline);
  Reader r(m.payload);
  if (r.u64() != kMagic) throw PeerError("a connection that is not a weightbus relay sink");
  uint32_t protocol = r.u32(), rank = r.u32(), world = r.u32();
  std::string topic = r.str(WB_NAME_MAX), transport = r.str(64);
  auto refuse = [&](const std::string &why) {
    send_refusal(s.fd(), why, deadline);
    throw PeerError("refused a sink: " + why);
  };
  if (protocol != kProtocol) refuse("relay protocol " + std::to_string(protocol) + ", the source speaks " + std::to_string(kProtocol));
  if (topic != o_.topic) refuse("the sink asks for topic '" + topic + "', the source relays '" + o_.topic + "'");
  if (world != o_.world) refuse("the sink says --world " + std::to_string(world) + ", the source " + std::to_string(o_.world));
  if (rank == 0 || rank >= o_.world) refuse("rank " + std::to_string(rank) + " is not a sink rank of world " + std::to_string(o_.world));
  if (transport != transport_->name()) refuse("the sink uses --transport " + transport + ", the source " + transport_->name());
  auto same_rank = std::find_if(members_.begin(), members_.end(), [&](const Member &x) { return x.rank == rank; });
  if (same_rank != members_.end() && !peer_gone(same_rank->socket.fd())) refuse("rank " + std::to_string(rank) + " is already connected");
  send_message(s.fd(), MessageType::kWelcome, welcome_, deadline);
  Message ready_message = expect_message(s.fd(), MessageType::kReady, deadline);
  Reader ready(ready_message.payload);
  uint64_t held = ready.u64();
  const uint64_t latest = doing("wb_topic_latest", [&] { return topic_.latest(); });
  if (held > latest) {
    refuse("the sink's topic is at version " + std::to_string(held) + ", ahead of the source's " + std::to_string(latest));
  }
  if (same_rank != members_.end()) members_.erase(same_rank);
  log_line("rank " + std::to_string(rank) + " joined, holding version " + std::to_string(held));
  members_.push_back(Member{rank, std::move(s), held});
  std::sort(members_.begin(), members_.end(), [](const Member &a, const Member &b) { return a.rank < b.rank; });
  group_formed_ = false;
}

void Source::admit_joiners() {
  for (;;) {
    Socket s = accept_until(listener_, Deadline::after(0));
    if (!s.valid()) return;
    try {
      admit(std::move(s));
    } catch (const PeerError &e) {
      log_line(e.what());
    }
  }
}

void Source::drop_dead_members() {
  for (auto it = members_.begin(); it != members_.end();) {
    if (!gone(*it)) {
      ++it;
      continue;
    }
    it = members_.erase(it);
    group_formed_ = false;
  }
}

void Source::form_group() {
  transport_->leave();
  GroupSpec g;
  g.generation = ++generation_;
  g.nranks = uint32_t(members_.size() + 1);
  g.token = transport_->new_token();
  Deadline deadline = peer_deadline();
  for (uint32_t i = 0; i < members_.size(); ++i) {
    g.peers.push_back(members_[i].socket.fd());
    Writer w;
    w.u64(g.generation).u32(g.nranks).u32(i + 1).bytes(g.token.data(), uint32_t(g.token.size()));
    send_message(members_[i].socket.fd(), MessageType::kGroup, w, deadline);
  }
  transport_->join(g, deadline);
  for (Member &m : members_) {
    Message joined = expect_message(m.socket.fd(), MessageType::kJoined, deadline);
    Reader r(joined.payload);
    if (r.u64() != g.generation) throw PeerError("rank " + std::to_string(m.rank) + " joined another group");
  }
  group_formed_ = true;
}

void Source::reset(const std::string &why) {
  // A sink that died during a transfer is found here rather than by drop_dead_members: it is named all the same.
  for (const Member &m : members_) gone(m);
  log_line("dropping the group of " + std::to_string(members_.size()) + " sink(s): " + why +
           "; the live ones rejoin");
  transport_->leave();
  members_.clear();
  group_formed_ = false;
}

void Source::send_transfer(const weightbus::Snapshot &s, uint64_t v, const Transfer &t, const std::vector<uint64_t> &written_by,
                           const std::vector<char *> &data) {
  std::vector<uint32_t> needed = tensors_needed(written_by, t.from);
  std::vector<uint64_t> sizes;
  BucketIo io;
  Writer header;
  const std::string metadata = doing("wb_snapshot_metadata", [&] { return s.metadata(); });
  header.u64(v).u64(generation_).u32(t.broadcast).u64(o_.bucket).str(metadata).u32(uint32_t(needed.size()));
  for (uint32_t k : needed) {
    sizes.push_back(roots_.nbytes[k]);
    io.base.push_back(data[k]);
    header.str(roots_.names[k]);
  }
  std::vector<Bucket> buckets = plan_buckets(sizes, o_.bucket);
  io.buckets = &buckets;
  std::vector<Member *> to;
  for (uint32_t i = 0; i < members_.size(); ++i)
    if (t.broadcast || i == t.member) to.push_back(&members_[i]);
  int64_t start = now_ms();
  for (Member *m : to) send_message(m->socket.fd(), MessageType::kVersion, header, peer_deadline());
  transport_->send(io, t.broadcast ? 0 : t.member + 1, peer_deadline());
  for (Member *m : to) send_message(m->socket.fd(), MessageType::kSent, Writer().u64(v), peer_deadline());
  for (Member *m : to) {
    Message ack = expect_message(m->socket.fd(), MessageType::kAck, peer_deadline());
    Reader r(ack.payload);
    if (r.u64() != v) throw PeerError("rank " + std::to_string(m->rank) + " acknowledged another version");
    m->held = v;
  }
  uint64_t bytes = 0;
  for (uint64_t b : sizes) bytes += b;
  double ms = double(std::max<int64_t>(now_ms() - start, 0));
  char line[256];
  snprintf(line, sizeof(line), "relayed version %" PRIu64 " to %zu sink(s) by %s: %zu tensors, %" PRIu64 " bytes in %.0f ms",
           v, to.size(), t.broadcast ? "broadcast" : "catch-up", needed.size(), bytes, ms);
  printf("%s\n", line);
  fflush(stdout);
}

void Source::relay_latest() {
  const uint64_t latest = doing("wb_topic_latest", [&] { return topic_.latest(); });
  if (std::all_of(members_.begin(), members_.end(), [&](const Member &m) { return m.held == latest; })) return;
  weightbus::Snapshot snapshot = lease_latest();
  const uint64_t v = doing("wb_snapshot_version", [&] { return snapshot.version(); });
  std::vector<uint64_t> held;
  for (const Member &m : members_) held.push_back(m.held);
  std::vector<Transfer> plan = plan_transfers(held, v);
  if (plan.empty()) return;
  std::vector<uint64_t> written_by;
  std::vector<char *> data;
  bool cuda = false;
  for (uint32_t i : roots_.index) {
    const wb_tensor_info info = doing("tensor " + std::to_string(i), [&] { return snapshot.tensor(i); });
    written_by.push_back(info.version);
    data.push_back(static_cast<char *>(info.data));
    cuda = cuda || info.device_type == WB_DEVICE_CUDA;
  }
  // The transport's streams read the tensors: the version's GPU work must be done first.
  if (cuda) {
    doing("waiting for version " + std::to_string(v) + "'s GPU work", [&] { snapshot.synchronize(o_.timeout_ms); });
  }
  for (const Transfer &t : plan) send_transfer(snapshot, v, t, written_by, data);
}

int Source::run() {
  wb_attach_options ao = WB_ATTACH_OPTIONS_INIT;
  ao.socket_path = o_.socket.empty() ? nullptr : o_.socket.c_str();
  ao.broker_name = o_.broker_name.empty() ? nullptr : o_.broker_name.c_str();
  ao.client_name = "relay-source";
  client_ = doing("attaching to the local broker", [&] { return weightbus::Client(&ao); });
  open_topic();
  layout_ = read_layout(topic_, lease_latest());
  roots_ = roots_of(layout_);
  int32_t device = 0;
  for (uint32_t i : roots_.index) {
    if (!layout_.tensors[i].cuda) continue;
    if (o_.transport == "tcp") throw RelayError(kExitUsage, "topic '" + o_.topic + "' has CUDA tensors: --transport tcp moves host tensors only");
    const wb_tensor_info info = doing("wb_topic_tensor", [&] { return topic_.tensor(i); });
    device = doing("the GPU of tensor '" + layout_.tensors[i].name + "'",
                   [&] { return weightbus::cuda_device_ordinal(info.device_uuid); });
    break;
  }
  transport_ = make_transport(o_, device);
  welcome_.u64(o_.bucket);
  encode_layout(layout_, welcome_);
  listener_ = listen_on(o_.rendezvous);
  log_line("source of '" + o_.topic + "' listening at " + o_.rendezvous.text() + " (" + transport_->name() +
           " transport, world " + std::to_string(o_.world) + ")");
  Deadline gather = Deadline::after(o_.timeout_ms);
  bool gathered = false;
  while (!g_stop) {
    admit_joiners();
    drop_dead_members();
    if (!gathered && members_.size() + 1 < o_.world && !gather.passed()) {
      usleep(20000);
      continue;
    }
    if (!gathered && members_.size() + 1 < o_.world) {
      log_line("going on with " + std::to_string(members_.size()) + " of " + std::to_string(o_.world - 1) +
               " sinks after " + std::to_string(o_.timeout_ms) + " ms; the others may join later");
    }
    gathered = true;
    try {
      if (!group_formed_ && !members_.empty()) form_group();
      if (!members_.empty()) relay_latest();
    } catch (const PeerError &e) {
      reset(e.what());
      continue;
    }
    wait_for_version(doing("wb_topic_latest", [&] { return topic_.latest(); }), 50);
  }
  return 0;
}

}  // namespace

int run_source(const Options &o) {
  Source s(o);
  try {
    return s.run();
  } catch (const RelayError &e) {
    if (e.exit_code == 0 && g_stop) return 0;
    throw;
  }
}

}  // namespace wbrelay
