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
#ifndef WEIGHTBUS_WEIGHTBUS_HPP
#define WEIGHTBUS_WEIGHTBUS_HPP

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weightbus/weightbus.h"

namespace weightbus {

class Error : public std::runtime_error {
 public:
  explicit Error(int code) : std::runtime_error(std::string(wb_strerror(code)) + ": " + wb_last_error()), code_(code) {}
  Error(int code, const std::string &message)
      : std::runtime_error(std::string(wb_strerror(code)) + ": " + message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
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
  void view(const wb_view_spec &spec) { check(wb_tensor_view(get(), &spec)); }
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

class Client : public Owned<wb_client, wb_detach> {
 public:
  explicit Client(const wb_attach_options *options = nullptr) : Owned(attach(options)) {}
  Topic create(const std::string &name, uint32_t replicas = 2) {
    wb_topic_options options = WB_TOPIC_OPTIONS_INIT;
    options.replicas = replicas;
    wb_topic *topic;
    check(wb_topic_create(get(), c_name(name), &options, &topic));
    return Topic(topic);
  }
  Topic open(const std::string &name) {
    wb_topic *topic;
    check(wb_topic_open(get(), c_name(name), &topic));
    return Topic(topic);
  }
  // Removes a topic no publisher holds and no lease pins (wb_topic_remove).
  void remove(const std::string &name) { check(wb_topic_remove(get(), c_name(name))); }

 private:
  static wb_client *attach(const wb_attach_options *options) {
    wb_client *client;
    check(wb_attach(options, &client));
    return client;
  }
};

}  // namespace weightbus

#endif  // WEIGHTBUS_WEIGHTBUS_HPP
