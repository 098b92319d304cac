// The publisher and the reader of `weightbus demo`. They are written as the smallest honest example of the API
// (through its C++ wrapper, weightbus.hpp): a publisher writes every element of every tensor with the step
// number and publishes it as a version; the reader leases each version and checks every element against the
// step in the version's metadata.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "demo.hpp"

namespace wbcli::demo {
namespace {

std::string tensor_name(uint32_t i) { return "layers." + std::to_string(i) + ".weight"; }

uint64_t element_count(const wb_tensor_info &t) {
  uint64_t n = 1;
  for (uint32_t d = 0; d < t.ndim; ++d) n *= static_cast<uint64_t>(t.shape[d]);
  return n;
}

// The broker has created its socket but may not accept yet; retry the connection until the start-up deadline.
weightbus::Client attach_retrying(const Config &c, const char *client_name) {
  const int64_t deadline = monotonic_ms() + kStartupMs;
  for (;;) {
    try {
      return attach_to(c.socket, client_name, kStartupMs);
    } catch (const Failure &e) {
      if (e.cause.code() != WB_E_CONNECT || monotonic_ms() > deadline) throw;
    }
    sleep_ms(20);
  }
}

void send(const Signal &s, const char *who) {
  const char byte = 1;
  if (write(s.write, &byte, 1) != 1)
    throw std::runtime_error(std::string(who) + ": signal the peer: " + std::strerror(errno));
}

// Waits for the peer's byte; what names the event for the messages.
void receive(const Signal &s, const char *who, const std::string &what) {
  struct pollfd p = {s.read, POLLIN, 0};
  int n = 0;
  while ((n = poll(&p, 1, static_cast<int>(kStartupMs))) < 0 && errno == EINTR) {
  }
  if (n < 0) throw std::runtime_error(std::string(who) + ": poll: " + std::strerror(errno));
  if (n == 0)
    throw std::runtime_error(std::string(who) + ": " + what + " did not happen within " + std::to_string(kStartupMs) +
                             " ms");
  char byte = 0;
  if (read(s.read, &byte, 1) != 1)
    throw std::runtime_error(std::string(who) + ": the other process exited before " + what);
}

// ----------------------------------------------------------------------------------------------- publisher

void allocate_tensors(weightbus::Topic &topic) {
  std::vector<std::string> names;
  for (uint32_t i = 0; i < kTensorCount; ++i) names.push_back(tensor_name(i));
  std::vector<wb_tensor_spec> specs;
  for (const std::string &name : names) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.dtype = WB_DTYPE_F32;
    s.name = name.c_str();
    s.ndim = 2;
    s.shape[0] = s.shape[1] = kSide;
    specs.push_back(s);
  }
  doing("publisher: allocate the tensors of 'policy'", [&] { topic.alloc(specs); });
}

void publish_step(weightbus::Topic &topic, int64_t step) {
  const std::string what = "publisher: version for step " + std::to_string(step);
  // Aborted if anything below throws: nothing half-written gets published.
  weightbus::Update update = doing(what + ": begin the update", [&] { return topic.begin(kStepTimeoutMs); });
  for (uint32_t i = 0; i < kTensorCount; ++i) {
    const wb_tensor_info t = doing(what + ": get " + tensor_name(i), [&] { return update.tensor(tensor_name(i)); });
    std::fill_n(static_cast<float *>(t.data), element_count(t), static_cast<float>(step));
  }
  const std::string metadata = "{\"step\": " + std::to_string(step) + "}";
  const uint64_t version = doing(what + ": its version number", [&] { return update.version(); });
  // Said before publishing: the reader wakes the moment the version is published, and its line must follow this.
  say("publisher", "publishing version " + std::to_string(version) + "  metadata " + metadata);
  const uint64_t published = doing(what + ": publish", [&] { return update.publish(metadata); });
  if (published != version)
    throw std::runtime_error(what + ": published version " + std::to_string(published) + ", not " +
                             std::to_string(version));
}

// ----------------------------------------------------------------------------------------------- reader

// Acquires the version the wait returned; if a fast publisher already replaced it, the newest instead.
weightbus::Snapshot acquire(const weightbus::Topic &topic, uint64_t version) {
  return doing("reader: acquire version " + std::to_string(version), [&] {
    try {
      return topic.acquire(version, kStepTimeoutMs);
    } catch (const weightbus::Error &e) {
      if (e.code() != WB_E_EXPIRED) throw;
      return topic.acquire(0, kStepTimeoutMs);
    }
  });
}

int64_t read_step(const weightbus::Snapshot &snapshot, uint64_t version) {
  const std::string text =
      doing("reader: metadata of version " + std::to_string(version), [&] { return snapshot.metadata(); });
  const size_t at = text.find("\"step\":");
  if (at == std::string::npos)
    throw std::runtime_error("reader: version " + std::to_string(version) + " has no step in its metadata: " + text);
  return std::strtoll(text.c_str() + at + 7, nullptr, 10);
}

// Checks every element of every tensor against the step; returns how many elements it checked.
uint64_t check_elements(const weightbus::Snapshot &snapshot, uint64_t version, int64_t step) {
  uint64_t checked = 0;
  for (uint32_t i = 0; i < kTensorCount; ++i) {
    const std::string name = tensor_name(i);
    const wb_tensor_info t = doing("reader: look up " + name, [&] { return snapshot.tensor(name); });
    const auto *data = static_cast<const float *>(t.data);
    const uint64_t n = element_count(t);
    const auto *bad = std::find_if(data, data + n, [step](float x) { return x != static_cast<float>(step); });
    if (bad != data + n)
      throw std::runtime_error("reader: version " + std::to_string(version) + ": " + name + "[" +
                               std::to_string(bad - data) + "] is " + std::to_string(*bad) + " but the step is " +
                               std::to_string(step) + ": a torn read");
    checked += n;
  }
  return checked;
}

uint64_t read_next(const weightbus::Topic &topic, uint64_t after, const Config &c) {
  const uint64_t latest = doing("reader: wait for a version after " + std::to_string(after),
                                [&] { return topic.wait(after, c.interval_ms + kStepTimeoutMs); });
  const weightbus::Snapshot snapshot = acquire(topic, latest);
  const uint64_t version = doing("reader: version of the snapshot", [&] { return snapshot.version(); });
  const int64_t step = read_step(snapshot, version);
  const uint64_t checked = check_elements(snapshot, version, step);
  std::string line = "version " + std::to_string(version) + " step=" + std::to_string(step) + " checked " +
                     std::to_string(checked) + " elements, all equal";
  if (version > after + 1)  // wait returns the newest version; a slow reader skips, it never falls behind
    line += " (skipped " + std::to_string(version - after - 1) + " older version(s))";
  say("reader", line);
  return version;
}

}  // namespace

void say(const char *who, const std::string &what) { out_line(std::string(who) + ": " + what); }

int publisher_main(const Config &c) {
  close(c.topic_ready.read);
  close(c.reader_ready.write);
  weightbus::Client client = attach_retrying(c, "demo publisher");
  weightbus::Topic topic = doing("publisher: create topic 'policy'", [&] { return client.create(kTopic, kReplicas); });
  allocate_tensors(topic);
  say("publisher", "created topic \"policy\" with " + std::to_string(kTensorCount) + " f32 tensors of [" +
                       std::to_string(kSide) + ", " + std::to_string(kSide) + "] in " + std::to_string(kReplicas) +
                       " replicas (so it can write a new version while the reader reads the last)");
  send(c.topic_ready, "publisher");
  receive(c.reader_ready, "publisher", "the reader getting ready");
  for (int64_t step = 1; step <= c.versions; ++step) {
    if (step > 1) sleep_ms(c.interval_ms);
    publish_step(topic, step);
  }
  return 0;
}

int reader_main(const Config &c) {
  close(c.topic_ready.write);
  close(c.reader_ready.read);
  weightbus::Client client = attach_retrying(c, "demo reader");
  receive(c.topic_ready, "reader", "the topic's creation");
  const weightbus::Topic topic = open_topic(client, kTopic);
  say("reader", "opened topic \"policy\"; waiting for versions");
  send(c.reader_ready, "reader");
  for (uint64_t last = 0; last < static_cast<uint64_t>(c.versions);) last = read_next(topic, last, c);
  return 0;
}

}  // namespace wbcli::demo
