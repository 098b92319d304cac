// weightbus info: one topic, or one tensor of it, in detail.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "output_json.hpp"
#include "ranks.hpp"
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
// plus its offset, which is how tests see that views share storage. 0 when unknown (GPU, nothing leased, a
// sharded topic's logical tensor, which has no bytes of its own).
uint64_t address_of(const weightbus::Snapshot &snap, const wb_topic_info &topic, const TopicTensor &t) {
  if (!snap || t.info.device_type != WB_DEVICE_HOST || topic.ranks != 0) return 0;
  const wb_tensor_info info = doing("look up tensor '" + t.name + "'", [&] { return snap.tensor(t.info.index); });
  return reinterpret_cast<uintptr_t>(info.data);
}

// A rank's shard of a logical tensor: its box as registered.
struct Shard {
  wb_shard_spec spec;
  uint32_t rank;
  uint32_t index;
};

// Every rank's shards of tensor t, in rank then registration order (registered shards: no version needed).
std::vector<Shard> shards_of(const weightbus::Topic &topic, const std::vector<wb_rank_info> &ranks,
                             const TopicTensor &t) {
  std::vector<Shard> shards;
  for (const wb_rank_info &r : ranks) {
    for (uint32_t i = 0; i < r.shards; ++i) {
      try {
        shards.push_back({topic.shard(t.name, r.rank, i), r.rank, i});
      } catch (const weightbus::Error &e) {
        if (e.code() != WB_E_NOT_FOUND) throw Failure("look up shard " + std::to_string(i) + " of rank " +
                                                      std::to_string(r.rank) + " of '" + t.name + "'", e);
        break;  // this rank holds no more of t
      }
    }
  }
  return shards;
}

// A shard's box in numpy notation, half-open, as the library's messages write regions: "[0:512, 0:4096]".
std::string region_string(const wb_shard_spec &s) {
  std::string text = "[";
  for (uint32_t d = 0; d < s.ndim; ++d) {
    text += (d ? ", " : "") + std::to_string(s.offset[d]) + ":" + std::to_string(s.offset[d] + s.extent[d]);
  }
  return text + "]";
}

std::string yes_no(uint32_t flag) { return flag ? "yes" : "no"; }

void print_ranks_text(const wb_topic_info &info, const std::vector<wb_rank_info> &ranks,
                      const std::vector<TopicTensor> &tensors, const std::vector<std::vector<Shard>> &shards) {
  out_line("");
  std::vector<std::vector<std::string>> rows = {
      {"RANK", "PUBLISHER", "SEALED", "SHARDS", "PUBLISHED", "WRITING", "DIRTY", "BYTES"}};
  for (const wb_rank_info &r : ranks)
    rows.push_back({std::to_string(r.rank), r.pid ? "pid " + std::to_string(r.pid) : "none", yes_no(r.sealed),
                    std::to_string(r.shards), std::to_string(r.published), std::to_string(r.writing),
                    yes_no(r.dirty), human_bytes(r.bytes)});
  print_table(rows);
  const std::string waiting = waits_for(ranks, info.latest);
  if (!waiting.empty()) out_line(waiting);
  out_line("");
  std::vector<std::vector<std::string>> srows = {{"TENSOR", "RANK", "SHARD", "REGION", "SHAPE", "LAYOUT"}};
  const std::string layout = info.layout_complete ? "complete" : "incomplete";
  for (size_t k = 0; k < tensors.size(); ++k) {
    if (shards[k].empty()) srows.push_back({tensors[k].name, "-", "-", "-", "-", layout});
    for (const Shard &s : shards[k])
      srows.push_back({tensors[k].name, std::to_string(s.rank), std::to_string(s.index),
                       region_string(s.spec) + (s.spec.flags & WB_SHARD_REPLICATED ? " replicated" : ""),
                       shape_string(s.spec.extent, s.spec.ndim), layout});
  }
  print_table(srows);
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
                 {"ranks", info.ranks ? std::to_string(info.ranks) + ", layout " +
                                            (info.layout_complete ? "complete" : "incomplete")
                                      : "- (not sharded)"},
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

Json topic_json(const Target &t, const wb_topic_info &info, const Latest &l, const std::vector<wb_rank_info> &ranks) {
  Json o = topic_info_json(t.topic, info);
  o["timestamp_ns"] = l.timestamp_ns;
  o["metadata"] = l.metadata;
  o["ranks_detail"] = ranks_json(ranks, info.latest);
  o["waits_for"] = waits_for(ranks, info.latest);
  return o;
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
  const std::vector<wb_rank_info> ranks = topic_ranks(t.handle, info);
  std::vector<uint64_t> addresses;
  std::vector<std::vector<Shard>> shards;
  for (const TopicTensor &x : tensors) {
    addresses.push_back(address_of(l.snapshot, info, x));
    shards.push_back(shards_of(t.handle, ranks, x));
  }
  if (!g.json) {
    print_text(t, info, l, tensors, addresses);
    if (info.ranks) print_ranks_text(info, ranks, tensors, shards);
    return 0;
  }
  Json items = Json::array();
  for (size_t k = 0; k < tensors.size(); ++k) {
    Json o = tensor_json(tensors[k]);
    o["address"] = addresses[k];
    if (info.ranks) {
      Json &shard_items = o["shards"] = Json::array();
      for (const Shard &s : shards[k])
        shard_items.push_back(Json::object({{"rank", s.rank},
                                            {"shard", s.index},
                                            {"offset", std::vector<int64_t>(s.spec.offset, s.spec.offset + s.spec.ndim)},
                                            {"shape", std::vector<int64_t>(s.spec.extent, s.spec.extent + s.spec.ndim)},
                                            {"replicated", (s.spec.flags & WB_SHARD_REPLICATED) != 0}}));
    }
    items.push_back(std::move(o));
  }
  out_json(Json::object({{"topic", topic_json(t, info, l, ranks)}, {"tensors", items}}));
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
A sharded topic (docs/sharded-models.md) lists its logical tensors, then each rank: its publisher, whether it
sealed its layout, its shards, the last version it published and the one it is writing, and which ranks a
pending version waits for; then each logical tensor's shards per rank as registered (region: where the shard
lies in the logical tensor, numpy notation, half-open; shape: its extent; replicated: every rank holding that
box holds the same bytes) and whether the layout is complete (every rank sealed, every tensor covered).

options:
  --json   print {"topic": {"name", "latest", "replicas", "tensor_count", "bytes", "publisher_pid", "dirty",
           "ranks", "layout_complete", "timestamp_ns", "metadata", "ranks_detail": [{"rank", "pid", "sealed",
           "shards", "dirty", "published", "writing", "lag", "published_ns", "begin_ns", "bytes"}],
           "waits_for"}, "tensors": [{"name", "index", "dtype", "shape", "strides", "bytes", "view", "version",
           "device", "address", sharded: "shards": [{"rank", "shard", "offset", "shape", "replicated"}]}]}
           (address 0: not known)

examples:
  weightbus info policy
  weightbus info policy/model.layers.0.self_attn.q_proj.weight --json
)HELP",
    "",
    run_info,
};

}  // namespace wbcli
