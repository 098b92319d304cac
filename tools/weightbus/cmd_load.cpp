// weightbus load: publish a safetensors checkpoint as a version of a topic.
#include <fcntl.h>

#include <charconv>
#include <string>
#include <vector>

#include "commands.hpp"
#include "cuda_copy.hpp"
#include "file_io.hpp"
#include "journal.hpp"
#include "output_json.hpp"
#include "lease_holders.hpp"
#include "progress.hpp"
#include "safetensors.hpp"

namespace wbcli {
namespace {

constexpr int64_t kBeginTimeoutMs = 10000;  // R = 1: readers' leases must drain first; bound the wait

// A load that fails leaves nothing behind: the topic it created is removed again, once its handle is closed
// (declare this before the weightbus::Topic). A topic that existed before keeps what it had.
class RemoveUnlessPublished {
 public:
  RemoveUnlessPublished(weightbus::Client &client, std::string name, bool created)
      : client_(client), name_(std::move(name)), armed_(created) {}
  RemoveUnlessPublished(const RemoveUnlessPublished &) = delete;
  RemoveUnlessPublished &operator=(const RemoveUnlessPublished &) = delete;
  ~RemoveUnlessPublished() {
    if (!armed_) return;
    try {
      client_.remove(name_);
    } catch (const weightbus::Error &) {
      // Best effort while another error is being reported: that one is what the user needs to see.
    }
  }
  void published() { armed_ = false; }

 private:
  weightbus::Client &client_;
  std::string name_;
  bool armed_;
};

bool topic_exists(weightbus::Client &client, const std::string &name) {
  try {
    client.open(name);
    return true;
  } catch (const weightbus::Error &) {
    return false;
  }
}

// -1: host memory; else the CUDA ordinal.
int32_t parse_device(const std::string &text) {
  if (text == "cpu") return -1;
  if (text == "cuda") return 0;
  int32_t ordinal = -1;
  const char *end = text.data() + text.size();
  if (text.starts_with("cuda:")) {
    const auto [ptr, ec] = std::from_chars(text.data() + 5, end, ordinal);
    if (ec == std::errc() && ptr == end && text.size() > 5 && ordinal >= 0) return ordinal;
  }
  throw UsageError("--device must be cpu or cuda:N, not '" + text + "'");
}

// A complete journal next to a file means a checkpoint sync was interrupted: finish it before reading.
void finish_interrupted_syncs(const st::Checkpoint &cp, bool quiet) {
  for (const st::Shard &s : cp.shards) {
    const Replay r = replay_journal(s.path);
    if (quiet || r == Replay::kNone) continue;
    err_line("weightbus: " + s.path + (r == Replay::kApplied ? ": finished an interrupted sync from its journal"
                                                             : ": discarded the incomplete journal of an interrupted "
                                                               "sync (the file was not touched)"));
  }
}

std::string version_metadata(const st::Checkpoint &cp) {
  const std::string m = cp.shards.front().header.metadata_json.value_or("");
  if (m.size() > WB_METADATA_MAX)
    throw std::runtime_error(cp.shards.front().path + ": its __metadata__ is " + std::to_string(m.size()) +
                             " bytes of JSON, more than the " + std::to_string(WB_METADATA_MAX) +
                             " bytes a version's metadata holds");
  return m;
}

std::vector<wb_tensor_spec> specs_of(const st::Checkpoint &cp) {
  std::vector<wb_tensor_spec> specs;
  for (const st::Shard &s : cp.shards) {
    for (const st::Entry &e : s.header.tensors) {
      wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
      spec.name = e.name.c_str();
      spec.dtype = e.dtype;
      spec.ndim = static_cast<uint32_t>(e.shape.size());
      for (size_t d = 0; d < e.shape.size(); ++d) spec.shape[d] = e.shape[d];
      specs.push_back(spec);
    }
  }
  if (specs.empty()) throw std::runtime_error(cp.path + ": the checkpoint has no tensors");
  return specs;
}

// Reads every tensor's bytes from its file into where the update wants them.
void fill(weightbus::Update &update, const st::Checkpoint &cp, int32_t device, Progress &progress) {
  std::vector<char> staging;
  for (const st::Shard &s : cp.shards) {
    FileDescriptor fd = open_or_throw(s.path, O_RDONLY);
    for (const st::Entry &e : s.header.tensors) {
      const wb_tensor_info info = doing("write tensor '" + e.name + "'", [&] { return update.tensor(e.name); });
      const uint64_t n = e.end - e.begin, at = s.header.data_offset() + e.begin;
      if (device < 0) {
        read_exact(fd.get(), info.data, n, at, s.path);
      } else {
        staging.resize(n);
        read_exact(fd.get(), staging.data(), n, at, s.path);
        copy_host_to_device(device, info.data, staging.data(), n);
      }
      progress.add(n);
    }
  }
}

uint64_t data_bytes(const st::Checkpoint &cp) {
  uint64_t total = 0;
  for (const st::Shard &s : cp.shards) total += s.header.data_bytes();
  return total;
}

int run_load(const GlobalOptions &g, Args &args) {
  const std::optional<std::string> topic_name = args.value("--topic");
  const int32_t device = parse_device(args.value("--device").value_or("cpu"));
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = static_cast<uint32_t>(args.integer("--replicas", 1, WB_MAX_REPLICAS).value_or(opts.replicas));
  const std::string path = args.positionals(1, 1, "PATH").front();
  if (!topic_name) throw UsageError("missing --topic TOPIC");

  const st::Checkpoint cp = st::open_checkpoint(path);  // everything is validated before the broker is touched
  finish_interrupted_syncs(cp, g.json);
  std::vector<wb_tensor_spec> specs = specs_of(cp);
  const std::string metadata = version_metadata(cp);

  weightbus::Client client = attach(g, "weightbus load");
  const bool existed = topic_exists(client, *topic_name);
  weightbus::Topic created =
      doing("publish topic '" + *topic_name + "'", [&] { return client.create(*topic_name, opts); });
  RemoveUnlessPublished cleanup(client, *topic_name, !existed);
  weightbus::Topic topic = std::move(created);  // closed before cleanup runs
  const auto count = static_cast<uint32_t>(specs.size());
  if (device < 0)
    doing("allocate the tensors of '" + path + "'", [&] { topic.alloc(specs); });
  else
    doing("allocate the tensors of '" + path + "' on cuda:" + std::to_string(device),
          [&] { topic.alloc_cuda(specs, device); });
  weightbus::Update update = begin_naming_holders(client, topic, *topic_name, "load", kBeginTimeoutMs);
  {
    Progress progress("load", data_bytes(cp), !g.json);
    fill(update, cp, device, progress);
  }
  const uint64_t version = doing("publish '" + *topic_name + "'", [&] { return update.publish(metadata); });
  cleanup.published();

  if (g.json) {
    Json files = Json::array();
    for (const st::Shard &s : cp.shards) files.push_back(s.path);
    out_json(Json::object({{"topic", *topic_name},
                           {"version", version},
                           {"tensors", count},
                           {"bytes", data_bytes(cp)},
                           {"device", device < 0 ? "cpu" : "cuda:" + std::to_string(device)},
                           {"files", files}}));
    return 0;
  }
  out_line("loaded " + std::to_string(count) + " tensors (" + human_bytes(data_bytes(cp)) + ") from " + path +
           " into topic '" + *topic_name + "' as version " + std::to_string(version));
  return 0;
}

}  // namespace

const Command kLoadCommand = {
    "load",
    "publish a safetensors checkpoint as a version of a topic",
    "weightbus load PATH --topic TOPIC [--device cpu|cuda:N] [--replicas R] [--json]",
    R"HELP(Publish a safetensors checkpoint as the next version of TOPIC: creates the topic (or takes it over when
its publisher is gone), allocates its tensors in the order of their bytes in the files, copies them in and
publishes. The version's metadata is the file's "__metadata__" object as JSON, so that `weightbus checkpoint`
writes the same header back.
PATH is a .safetensors file, a sharded checkpoint's index (model.safetensors.index.json), or a folder holding
either. Every header is validated before anything is published; a file that breaks a rule of the format is
refused with a message naming the file, the tensor and the rule (header length, JSON, dtype names, shapes,
data offsets tiling the data from 0 without gaps or overlaps, end - begin = elements x dtype size, file size).
A sync that `checkpoint` left unfinished next to a file (FILE.wbjournal) is finished first. A load that
fails after creating TOPIC removes it again (see `weightbus rm`); an existing topic keeps what it had.
Into a topic of one replica, the update waits (at most 10 s) until readers release their leases, and says who
holds them: "waiting for pid N (NAME) holding version V of 'TOPIC'". A progress bar is drawn while the bytes
are read when stderr is a terminal (not with --json).

options:
  --topic TOPIC       the topic to publish (required)
  --device cpu|cuda:N where the tensors live: host shared memory (default), or GPU N (wb_tensor_alloc_cuda)
  --replicas R        replicas of a new topic, 1..4 (default 2); an existing topic must have the same
  --json              print {"topic", "version", "tensors", "bytes", "device", "files"}

examples:
  weightbus load ./Qwen2-0.5B --topic policy
  weightbus load ckpt/model.safetensors.index.json --topic policy --device cuda:0 --json
)HELP",
    "topic: device: replicas:",
    run_load,
};

}  // namespace wbcli
