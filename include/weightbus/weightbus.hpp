// weightbus.hpp — a thin, header-only C++17 wrapper over weightbus.h for servers that embed the client.
//
// Each class owns one C handle and closes it in its destructor; failures throw weightbus::Error carrying the
// WB_E_* code and the library's message. Nothing here adds behaviour: read weightbus.h for the semantics.
//
//   weightbus::Client client;                       // wb_attach with defaults
//   weightbus::Topic topic = client.open("policy");
//   uint64_t v = topic.wait(0, 5000);
//   weightbus::Snapshot snap = topic.acquire(v);    // released when snap goes out of scope
//   wb_tensor_info w = snap.tensor("layers.0.weight");
//
// Sharded topics: Client::create_rank, Topic::alloc_shards, Update::shard, Snapshot::shard, Plan and the split
// helpers (split, split_vocab, parts_qkv, parts_merged) returning values.
//
// Lists come back whole (Client::topics, clients, leases); DLPack exports are returned as the C call makes them,
// owned by the consumer, who calls their deleter.
#ifndef WEIGHTBUS_WEIGHTBUS_HPP
#define WEIGHTBUS_WEIGHTBUS_HPP

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weightbus/weightbus.h"

namespace weightbus {

// what() is "<wb_strerror(code)>: <message>". The library's message is thread-local and replaced by the next
// call, so Error(code) copies it when built, i.e. right after the failing call.
class Error : public std::runtime_error {
 public:
  explicit Error(int code) : Error(code, wb_last_error()) {}
  Error(int code, const std::string &message)
      : std::runtime_error(std::string(wb_strerror(code)) + ": " + message), code_(code), message_(message) {}
  int code() const noexcept { return code_; }
  // The library's message alone (wb_last_error at the failure), without the code's description.
  const std::string &message() const noexcept { return message_; }

 private:
  int code_;
  std::string message_;
};

inline void check(int rc) {
  if (rc != WB_OK) throw Error(rc);
}

// A std::string may hold a NUL, where the C string it becomes would end ("a\0b" would name "a"): refused with
// WB_E_INVAL, as the C API refuses what it cannot read whole.
inline const char *c_name(const std::string &name) {
  if (name.find('\0') != std::string::npos) {
    throw Error(WB_E_INVAL, "name '" + name.substr(0, name.find('\0')) + "\\0...' holds a NUL byte");
  }
  return name.c_str();
}

// Owns a handle; Close is the C function that destroys it.
template <typename Handle, int (*Close)(Handle *)>
class Owned {
 public:
  Owned() = default;
  explicit Owned(Handle *handle) : handle_(handle) {}
  Owned(Owned &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Owned &operator=(Owned &&other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Owned(const Owned &) = delete;
  Owned &operator=(const Owned &) = delete;
  ~Owned() { reset(); }

  Handle *get() const noexcept { return handle_; }
  explicit operator bool() const noexcept { return handle_ != nullptr; }
  Handle *release() noexcept { return std::exchange(handle_, nullptr); }

 protected:
  void reset() noexcept {
    if (handle_ != nullptr) Close(std::exchange(handle_, nullptr));
  }

 private:
  Handle *handle_ = nullptr;
};

inline wb_tensor_info tensor_info() {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  return info;
}

// The socket path wb_attach would use for broker_name (empty: $WEIGHTBUS_NAME, else "default"), or
// $WEIGHTBUS_SOCKET when set (wb_default_socket_path).
inline std::string default_socket_path(const std::string &broker_name = std::string()) {
  char path[4096];
  check(wb_default_socket_path(broker_name.empty() ? nullptr : c_name(broker_name), path, sizeof path));
  return path;
}

// The CUDA ordinal, in this process, of the GPU with this UUID (wb_cuda_device_ordinal).
inline int32_t cuda_device_ordinal(const uint8_t uuid[16]) {
  int32_t ordinal;
  check(wb_cuda_device_ordinal(uuid, &ordinal));
  return ordinal;
}

namespace detail {

// A wb_list_* call made whole: the list may grow between sizing it and reading it, so it is read again with the
// larger count until it fits (the broker's tables are bounded, so this ends).
template <class Info, class List>
std::vector<Info> list_all(const Info &init, List list) {
  uint32_t count = 0;
  check(list(nullptr, 0, &count));
  for (;;) {
    std::vector<Info> items(count, init);
    const uint32_t capacity = count;
    check(list(items.data(), capacity, &count));
    if (count <= capacity) {
      items.resize(count);
      return items;
    }
  }
}

}  // namespace detail

class Snapshot : public Owned<wb_snapshot, wb_snapshot_release> {
 public:
  using Owned::Owned;
  uint64_t version() const {
    uint64_t v;
    check(wb_snapshot_version(get(), &v));
    return v;
  }
  std::string metadata() const {
    const void *data;
    uint32_t size;
    check(wb_snapshot_metadata(get(), &data, &size, nullptr));
    return std::string(static_cast<const char *>(data), size);
  }
  // When the version was published (wb_snapshot_metadata's timestamp, CLOCK_REALTIME nanoseconds).
  uint64_t timestamp_ns() const {
    const void *data;
    uint32_t size;
    uint64_t ns;
    check(wb_snapshot_metadata(get(), &data, &size, &ns));
    return ns;
  }
  wb_tensor_info tensor(const std::string &name) const {
    wb_tensor_info info = tensor_info();
    check(wb_snapshot_tensor(get(), c_name(name), &info));
    return info;
  }
  wb_tensor_info tensor(uint32_t index) const {
    wb_tensor_info info = tensor_info();
    check(wb_snapshot_tensor_at(get(), index, &info));
    return info;
  }
  // Every tensor and view, in topic order, in one call (wb_snapshot_tensors; asked again when views were added
  // between the count and the call).
  std::vector<wb_tensor_info> tensors() const {
    for (;;) {
      uint32_t count = 0;
      check(wb_snapshot_tensors(get(), nullptr, 0, &count));
      std::vector<wb_tensor_info> infos(count + 1, tensor_info());  // the library reads the first's struct_size
      uint32_t asked = count;
      int rc = wb_snapshot_tensors(get(), infos.data(), asked, &count);
      if (rc == WB_E_SIZE && count > asked) continue;
      check(rc);
      infos.resize(count);
      return infos;
    }
  }
  // Where the tensors lie: equal and nonzero for two snapshots of one topic, of one tensor count, means the same
  // addresses; 0: look (wb_snapshot_place).
  uint64_t place() const {
    uint64_t place = 0;
    check(wb_snapshot_place(get(), &place));
    return place;
  }
  // Sharded topic: shard number index of rank `rank` of logical tensor name (wb_snapshot_shard).
  wb_tensor_info shard(const std::string &name, uint32_t rank, uint32_t index = 0) const {
    wb_tensor_info info = tensor_info();
    check(wb_snapshot_shard(get(), c_name(name), rank, index, &info));
    return info;
  }
  // Blocks until the GPU work that wrote the version is done (wb_snapshot_synchronize).
  void synchronize(int64_t timeout_ms) { check(wb_snapshot_synchronize(get(), timeout_ms)); }
  // Makes stream wait for that work without blocking the host (wb_snapshot_wait_stream).
  void wait_stream(void *stream) { check(wb_snapshot_wait_stream(get(), stream)); }
  // Copies into the caller's buffers on stream (wb_snapshot_copy_into): synchronize stream before the release.
  void copy_into(const std::vector<wb_copy_target> &targets, void *stream = nullptr) {
    check(wb_snapshot_copy_into(get(), targets.data(), uint32_t(targets.size()), stream));
  }
  // DLPack exports (wb_snapshot_dlpack, wb_snapshot_dlpack_versioned): each holds the lease until its deleter
  // is called, which the consumer does exactly once.
  DLManagedTensor *dlpack(const std::string &name) {
    DLManagedTensor *tensor;
    check(wb_snapshot_dlpack(get(), c_name(name), &tensor));
    return tensor;
  }
  DLManagedTensorVersioned *dlpack_versioned(const std::string &name) {
    DLManagedTensorVersioned *tensor;
    check(wb_snapshot_dlpack_versioned(get(), c_name(name), &tensor));
    return tensor;
  }
};

// An update aborts in its destructor unless published.
class Update : public Owned<wb_update, wb_update_abort> {
 public:
  using Owned::Owned;
  uint64_t version() const {
    uint64_t v;
    check(wb_update_version(get(), &v));
    return v;
  }
  wb_tensor_info tensor(const std::string &name) {
    wb_tensor_info info = tensor_info();
    check(wb_update_tensor(get(), c_name(name), &info));
    return info;
  }
  // Sharded topic: this rank's shard number index of logical tensor name, marked changed (wb_update_shard).
  wb_tensor_info shard(const std::string &name, uint32_t index = 0) {
    wb_tensor_info info = tensor_info();
    check(wb_update_shard(get(), c_name(name), index, &info));
    return info;
  }
  // Numbers the version this update publishes (wb_update_set_version).
  void set_version(uint64_t version) { check(wb_update_set_version(get(), version)); }
  // A tensor exported for writing (wb_update_dlpack); its data is valid until publish or abort.
  DLManagedTensor *dlpack(const std::string &name) {
    DLManagedTensor *tensor;
    check(wb_update_dlpack(get(), c_name(name), &tensor));
    return tensor;
  }
  uint64_t publish(const std::string &metadata = std::string()) {
    uint64_t v;
    check(wb_update_publish(get(), metadata.data(), uint32_t(metadata.size()), &v));
    release();  // publish freed it
    return v;
  }
};

class Topic : public Owned<wb_topic, wb_topic_close> {
 public:
  using Owned::Owned;
  void alloc(const std::vector<wb_tensor_spec> &specs) {
    check(wb_tensor_alloc(get(), specs.data(), uint32_t(specs.size())));
  }
  // On GPU ordinal device (wb_tensor_alloc_cuda).
  void alloc_cuda(const std::vector<wb_tensor_spec> &specs, int32_t device) {
    check(wb_tensor_alloc_cuda(get(), specs.data(), uint32_t(specs.size()), device));
  }
  // The caller's GPU memory, pointers[r * specs.size() + i] for replica r of tensor i (wb_tensor_register_cuda).
  void register_cuda(const std::vector<wb_tensor_spec> &specs, const std::vector<void *> &pointers) {
    check(wb_tensor_register_cuda(get(), specs.data(), pointers.data(), uint32_t(specs.size())));
  }
  void view(const wb_view_spec &spec) { check(wb_tensor_view(get(), &spec)); }
  // Sharded topic, a rank's publisher: its host shards (wb_shard_alloc).
  void alloc_shards(const std::vector<wb_shard_spec> &specs) {
    check(wb_shard_alloc(get(), specs.data(), uint32_t(specs.size())));
  }
  // On GPU ordinal device (wb_shard_alloc_cuda).
  void alloc_shards_cuda(const std::vector<wb_shard_spec> &specs, int32_t device) {
    check(wb_shard_alloc_cuda(get(), specs.data(), uint32_t(specs.size()), device));
  }
  // The caller's GPU memory, pointers[r * specs.size() + i] for replica r of shard i (wb_shard_register_cuda).
  void register_shards_cuda(const std::vector<wb_shard_spec> &specs, const std::vector<void *> &pointers) {
    check(wb_shard_register_cuda(get(), specs.data(), pointers.data(), uint32_t(specs.size())));
  }
  // This rank registers no more shards; the first begin does it too (wb_topic_seal_rank).
  void seal_rank(int64_t timeout_ms) { check(wb_topic_seal_rank(get(), timeout_ms)); }
  // Rank `rank` of a sharded topic: publisher, seal, versions (wb_topic_rank_info).
  wb_rank_info rank_info(uint32_t rank) const {
    wb_rank_info info = WB_RANK_INFO_INIT;
    check(wb_topic_rank_info(get(), rank, &info));
    return info;
  }
  // Shard number index of rank `rank` of logical tensor name, as registered: its box (wb_topic_shard).
  wb_shard_spec shard(const std::string &name, uint32_t rank, uint32_t index = 0) const {
    wb_shard_spec spec = WB_SHARD_SPEC_INIT;
    check(wb_topic_shard(get(), c_name(name), rank, index, &spec));
    return spec;
  }
  Update begin(int64_t timeout_ms) {
    wb_update *update;
    check(wb_update_begin(get(), timeout_ms, &update));
    return Update(update);
  }
  uint64_t latest() const {
    uint64_t v;
    check(wb_topic_latest(get(), &v));
    return v;
  }
  // The topic's registry entry: name, replicas, latest version, tensor count, publisher (wb_topic_get_info).
  wb_topic_info info() const {
    wb_topic_info info = WB_TOPIC_INFO_INIT;
    check(wb_topic_get_info(get(), &info));
    return info;
  }
  // Tensors and views, the range of tensor(index) (wb_topic_tensor_count).
  uint32_t tensor_count() const {
    uint32_t count;
    check(wb_topic_tensor_count(get(), &count));
    return count;
  }
  // The tensor at index, in the topic's order (wb_topic_tensor).
  wb_tensor_info tensor(uint32_t index) const {
    wb_tensor_info info = tensor_info();
    check(wb_topic_tensor(get(), index, &info));
    return info;
  }
  uint64_t wait(uint64_t after, int64_t timeout_ms) const {
    uint64_t v;
    check(wb_topic_wait(get(), after, timeout_ms, &v));
    return v;
  }
  int notify_fd() const {
    int fd;
    check(wb_topic_notify_fd(get(), &fd));
    return fd;
  }
  // Each time notify_fd() is readable: the latest version (wb_topic_notify_ack).
  uint64_t notify_ack() const {
    uint64_t v;
    check(wb_topic_notify_ack(get(), &v));
    return v;
  }
  Snapshot acquire(uint64_t version = 0, int64_t timeout_ms = 5000) const {
    wb_snapshot *snapshot;
    check(wb_snapshot_acquire(get(), version, timeout_ms, &snapshot));
    return Snapshot(snapshot);
  }
};

// A plan's run of the first version after one the reader had, leased before it is published (wb_plan_arm).
class Armed : public Owned<wb_armed, wb_armed_release> {
 public:
  using Owned::Owned;
  uint64_t version() const {
    uint64_t v;
    check(wb_armed_version(get(), &v));
    return v;
  }
  // Whether the copies are enqueued on the arm's stream already, which is held until the version comes or the
  // hold runs out (wb_armed_on_stream: a GPU arm).
  bool on_stream() const {
    int flag;
    check(wb_armed_on_stream(get(), &flag));
    return flag != 0;
  }
  // Waits until the armed version is published and runs the plan for it (wb_armed_wait): its snapshot. A
  // timeout (WB_E_TIMEOUT) leaves the arm to wait on; any other error spends it (this object is then empty).
  Snapshot wait(int64_t timeout_ms = -1) {
    wb_snapshot *snapshot;
    int rc = wb_armed_wait(get(), timeout_ms, &snapshot);
    if (rc != WB_E_TIMEOUT && get() != nullptr) release();  // freed by the call
    check(rc);
    return Snapshot(snapshot);
  }
};

// Destinations resolved into region copies from a topic's shards, once (wb_plan_create); run it every version.
// The topic must outlive it.
class Plan {
 public:
  Plan() = default;
  Plan(const Topic &topic, const std::vector<wb_slice_dest> &dests, const std::vector<wb_slice_part> &parts) {
    wb_plan *plan;
    check(wb_plan_create(topic.get(), dests.data(), uint32_t(dests.size()), parts.data(), uint32_t(parts.size()),
                         &plan));
    plan_.reset(plan);
  }
  wb_plan *get() const noexcept { return plan_.get(); }
  explicit operator bool() const noexcept { return plan_ != nullptr; }
  // Fills the destinations with the snapshot's version; CUDA copies on stream: synchronize it before the
  // snapshot's release (wb_plan_run).
  void run(const Snapshot &snapshot, void *stream = nullptr) { check(wb_plan_run(get(), snapshot.get(), stream)); }
  // Arms the plan for the first version after `after` (wb_plan_arm): wait() on it copies that version.
  Armed arm(uint64_t after, void *stream = nullptr) {
    wb_armed *armed;
    check(wb_plan_arm(get(), after, stream, &armed));
    return Armed(armed);
  }
  wb_plan_info info() const {
    wb_plan_info info = WB_PLAN_INFO_INIT;
    check(wb_plan_get_info(get(), &info));
    return info;
  }

 private:
  struct Destroy {
    void operator()(wb_plan *plan) const noexcept { wb_plan_destroy(plan); }
  };
  std::unique_ptr<wb_plan, Destroy> plan_;
};

// The frameworks' split formulas (wb_split, wb_split_vocab, wb_parts_qkv, wb_parts_merged), as values.
struct Split {
  int64_t offset;
  int64_t extent;
};

inline Split split(int64_t size, uint32_t rank, uint32_t ranks, uint32_t mode = WB_SPLIT_EVEN) {
  Split s;
  check(wb_split(size, rank, ranks, mode, &s.offset, &s.extent));
  return s;
}

struct VocabSplit {
  int64_t offset;  // the real rows [offset, offset + extent), then padded_extent - extent rows of zeros
  int64_t extent;
  int64_t padded_extent;
};

inline VocabSplit split_vocab(int64_t vocab, uint32_t rank, uint32_t ranks, int64_t pad_to = 64) {
  VocabSplit s;
  check(wb_split_vocab(vocab, pad_to, rank, ranks, &s.offset, &s.extent, &s.padded_extent));
  return s;
}

// The parts keep pointers to the names: the strings must outlive them.
inline std::array<wb_slice_part, 3> parts_qkv(const std::string &q, const std::string &k, const std::string &v,
                                              int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t hidden,
                                              uint32_t rank, uint32_t ranks) {
  std::array<wb_slice_part, 3> parts;
  check(wb_parts_qkv(c_name(q), c_name(k), c_name(v), heads, kv_heads, head_dim, hidden, rank, ranks,
                     parts.data()));
  return parts;
}

inline std::vector<wb_slice_part> parts_merged(const std::vector<std::string> &names,
                                               const std::vector<int64_t> &rows, int64_t cols, uint32_t rank,
                                               uint32_t ranks) {
  if (names.size() != rows.size()) {
    throw Error(WB_E_INVAL,
                std::to_string(names.size()) + " names but " + std::to_string(rows.size()) + " row counts");
  }
  std::vector<const char *> c_names;
  for (const std::string &name : names) c_names.push_back(c_name(name));
  std::vector<wb_slice_part> parts(names.size());
  check(wb_parts_merged(c_names.data(), rows.data(), uint32_t(names.size()), cols, rank, ranks, parts.data()));
  return parts;
}

class Client : public Owned<wb_client, wb_detach> {
 public:
  explicit Client(const wb_attach_options *options = nullptr) : Owned(attach(options)) {}
  Topic create(const std::string &name, uint32_t replicas = 2) {
    wb_topic_options options = WB_TOPIC_OPTIONS_INIT;
    options.replicas = replicas;
    return create(name, options);
  }
  // With every option of wb_topic_create.
  Topic create(const std::string &name, const wb_topic_options &options) {
    wb_topic *topic;
    check(wb_topic_create(get(), c_name(name), &options, &topic));
    return Topic(topic);
  }
  // Creates or joins sharded topic name as rank `rank` of `ranks` and becomes its publisher (wb_topic_create_rank).
  Topic create_rank(const std::string &name, uint32_t rank, uint32_t ranks, uint32_t replicas = 2) {
    wb_rank_options options = WB_RANK_OPTIONS_INIT;
    options.rank = rank;
    options.ranks = ranks;
    options.replicas = replicas;
    wb_topic *topic;
    check(wb_topic_create_rank(get(), c_name(name), &options, &topic));
    return Topic(topic);
  }
  Topic open(const std::string &name) {
    wb_topic *topic;
    check(wb_topic_open(get(), c_name(name), &topic));
    return Topic(topic);
  }
  // Removes a topic no publisher holds and no lease pins (wb_topic_remove).
  void remove(const std::string &name) { check(wb_topic_remove(get(), c_name(name))); }
  // Our slot, as wb_client_info.id (wb_client_id).
  uint32_t id() const {
    uint32_t id;
    check(wb_client_id(get(), &id));
    return id;
  }
  // Every topic of the broker (wb_list_topics).
  std::vector<wb_topic_info> topics() const {
    wb_client *client = get();
    const wb_topic_info init = WB_TOPIC_INFO_INIT;
    return detail::list_all(init, [client](wb_topic_info *out, uint32_t capacity, uint32_t *count) {
      return wb_list_topics(client, out, capacity, count);
    });
  }
  // Every attached client (wb_list_clients).
  std::vector<wb_client_info> clients() const {
    wb_client *client = get();
    const wb_client_info init = WB_CLIENT_INFO_INIT;
    return detail::list_all(init, [client](wb_client_info *out, uint32_t capacity, uint32_t *count) {
      return wb_list_clients(client, out, capacity, count);
    });
  }
  // Every lease held now, a moment's picture (wb_list_leases).
  std::vector<wb_lease_info> leases() const {
    wb_client *client = get();
    const wb_lease_info init = WB_LEASE_INFO_INIT;
    return detail::list_all(init, [client](wb_lease_info *out, uint32_t capacity, uint32_t *count) {
      return wb_list_leases(client, out, capacity, count);
    });
  }
  // The broker: who it is, its limits with what is used of each, and its counters (wb_broker_get_info).
  wb_broker_info broker_info() const {
    wb_broker_info info = WB_BROKER_INFO_INIT;
    check(wb_broker_get_info(get(), &info));
    return info;
  }

 private:
  static wb_client *attach(const wb_attach_options *options) {
    wb_client *client;
    check(wb_attach(options, &client));
    return client;
  }
};

}  // namespace weightbus

#endif  // WEIGHTBUS_WEIGHTBUS_HPP
