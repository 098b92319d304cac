// weightbus info: one topic, or one tensor of it, in detail.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "json.hpp"
#include "topic_tensors.hpp"

namespace wbcli {
namespace {

constexpr int64_t kAcquireTimeoutMs = 5000;

struct Target {
  std::string topic;
  std::string tensor;  // empty: the whole topic
  weightbus::Topic handle;
};

// TOPIC/NAME: a topic named with the whole argument wins (topic names may hold '/'); otherwise the part before
// the first '/' is the topic and the rest the tensor.
Target resolve(weightbus::Client &client, const std::string &arg) {
  const size_t slash = arg.find('/');
  try {
    return {arg, "", client.open(arg)};
  } catch (const weightbus::Error &e) {
    if (e.code() != WB_E_NOT_FOUND || slash == std::string::npos) throw Failure("open topic '" + arg + "'", e);
  }
  const std::string topic = arg.substr(0, slash);
  return {topic, arg.substr(slash + 1), open_topic(client, topic)};
}

struct Latest {
  weightbus::Snapshot snapshot;  // empty when nothing can be read (nothing published, dirty)
  std::string metadata;
  uint64_t timestamp_ns = 0;
  std::string why_not;
};

Latest lease_latest(const weightbus::Topic &topic, const wb_topic_info &info) {
  Latest l;
  if (info.latest == 0) {
    l.why_not = "nothing published yet";
    return l;
  }
  try {
    l.snapshot = topic.acquire(info.latest, kAcquireTimeoutMs);
  } catch (const weightbus::Error &e) {
    if (e.code() != WB_E_DIRTY && e.code() != WB_E_EXPIRED && e.code() != WB_E_TIMEOUT)
      throw Failure("lease version " + std::to_string(info.latest), e);
    l.why_not = e.what();
    return l;
  }
  l.metadata = doing("read the metadata", [&] { return l.snapshot.metadata(); });
  l.timestamp_ns = doing("read the metadata", [&] { return l.snapshot.timestamp_ns(); });
  return l;
}

// Where a host tensor's bytes are in this process as of the leased version: a view's address is its parent's
// plus its offset, which is how tests see that views share storage. 0 when unknown (GPU, nothing leased).
uint64_t address_of(const weightbus::Snapshot &snap, const TopicTensor &t) {
  if (!snap || t.info.device_type != WB_DEVICE_HOST) return 0;
  const wb_tensor_info info = doing("look up tensor '" + t.name + "'", [&] { return snap.tensor(t.info.index); });
  return reinterpret_cast<uintptr_t>(info.data);
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return v ? buf : "-";
}

void print_text(const Target &t, const wb_topic_info &info, const Latest &l, const std::vector<TopicTensor> &tensors,
                const std::vector<uint64_t> &addresses) {
  if (t.tensor.empty()) {
    print_table({{"topic", t.topic},
                 {"latest", std::to_string(info.latest)},
                 {"replicas", std::to_string(info.replicas)},
                 {"tensors", std::to_string(info.tensor_count)},
                 {"bytes", human_bytes(info.bytes) + " (" + std::to_string(info.bytes) + ")"},
                 {"publisher", info.publisher_pid ? "pid " + std::to_string(info.publisher_pid) : "none"},
                 {"dirty", info.dirty ? "yes" : "no"},
                 {"published", l.snapshot ? format_time(l.timestamp_ns) : l.why_not},
                 {"metadata", l.metadata.empty() ? "-" : l.metadata}});
    out_line("");
  }
  std::vector<std::vector<std::string>> rows = {
      {"TENSOR", "DTYPE", "SHAPE", "STRIDES", "BYTES", "VIEW", "VERSION", "DEVICE", "ADDRESS"}};
  for (size_t k = 0; k < tensors.size(); ++k) {
    const wb_tensor_info &i = tensors[k].info;
    rows.push_back({tensors[k].name, dtype_string(i.dtype), shape_string(i.shape, i.ndim),
                    shape_string(i.strides, i.ndim), std::to_string(i.nbytes), i.is_view ? "yes" : "no",
                    std::to_string(i.version), i.device_type == WB_DEVICE_CUDA ? "cuda" : "host", hex(addresses[k])});
  }
  print_table(rows);
}

std::string topic_json(const Target &t, const wb_topic_info &info, const Latest &l) {
  return JsonObject()
      .str("name", t.topic)
      .num("latest", info.latest)
      .num("replicas", info.replicas)
      .num("tensor_count", info.tensor_count)
      .num("bytes", info.bytes)
      .num("publisher_pid", info.publisher_pid)
      .boolean("dirty", info.dirty != 0)
      .num("timestamp_ns", l.timestamp_ns)
      .str("metadata", l.metadata)
      .text();
}

int run_info(const GlobalOptions &g, Args &args) {
  const std::string arg = args.positionals(1, 1, "TOPIC[/NAME]").front();
  weightbus::Client client = attach(g, "weightbus info");
  Target t = resolve(client, arg);
  const wb_topic_info info = doing("describe topic '" + t.topic + "'", [&] { return t.handle.info(); });
  std::vector<TopicTensor> tensors = topic_tensors(t.handle, t.topic);
  if (!t.tensor.empty()) {
    std::erase_if(tensors, [&](const TopicTensor &x) { return x.name != t.tensor; });
    if (tensors.empty())
      throw std::runtime_error("topic '" + t.topic + "' has no tensor or view named '" + t.tensor + "'");
  }
  const Latest l = lease_latest(t.handle, info);
  std::vector<uint64_t> addresses;
  for (const TopicTensor &x : tensors) addresses.push_back(address_of(l.snapshot, x));
  if (!g.json) return print_text(t, info, l, tensors, addresses), 0;
  std::vector<std::string> items;
  for (size_t k = 0; k < tensors.size(); ++k) items.push_back(tensor_json(tensors[k]).num("address", addresses[k]).text());
  out_line(JsonObject().raw("topic", topic_json(t, info, l)).raw("tensors", json_array(items)).text());
  return 0;
}

}  // namespace

const Command kInfoCommand = {
    "info",
    "describe a topic, or one of its tensors, in detail",
    "weightbus info TOPIC[/NAME] [--json]",
    R"HELP(Describe TOPIC: latest version, replicas, bytes, publisher, dirty flag, and the latest version's publish
time and metadata; then every tensor and view: dtype, shape, strides (elements), bytes spanned, whether it is
a view, the version that last wrote it, its device and, for host tensors, the address of its bytes in this
process as of the latest version (a view's address is inside its parent's: views share storage).
TOPIC/NAME shows one tensor or view. A topic named with the whole argument wins; otherwise the part before
the first '/' is the topic.

options:
  --json   print {"topic": {"name", "latest", "replicas", "tensor_count", "bytes", "publisher_pid", "dirty",
           "timestamp_ns", "metadata"}, "tensors": [{"name", "index", "dtype", "shape", "strides", "bytes",
           "view", "version", "device", "address"}]} (address 0: not known)

examples:
  weightbus info policy
  weightbus info policy/model.layers.0.self_attn.q_proj.weight --json
)HELP",
    run_info,
};

}  // namespace wbcli
