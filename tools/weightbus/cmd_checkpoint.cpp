// weightbus checkpoint: write a version of a topic as safetensors, rewriting only the blocks that changed.
#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "block_sync.hpp"
#include "commands.hpp"
#include "cuda_copy.hpp"
#include "file_io.hpp"
#include "journal.hpp"
#include "output_json.hpp"
#include "safetensors.hpp"

namespace wbcli {
namespace {

constexpr int64_t kAcquireTimeoutMs = 5000;
constexpr uint64_t kDefaultShardBytes = 5'000'000'000;  // transformers' default max_shard_size ("5GB")

struct Tensor {
  st::Entry entry;  // begin/end set when the tensor is placed in a shard
  const void *data;
};

struct File {
  std::string name;
  std::vector<Tensor> tensors;
  std::string header;
};

struct Options {
  std::string topic;
  std::string dir;
  uint64_t version = 0;
  uint64_t shard_bytes = kDefaultShardBytes;
  uint64_t block_bytes = kDefaultBlockBytes;
};

// The __metadata__ to write: the version's metadata when it is a JSON object of strings (what `load` publishes),
// else that metadata as one string under "weightbus.metadata" (hex digits when it is not UTF-8 text).
std::string metadata_json(const void *data, uint32_t size) {
  if (size == 0) return "";
  const std::string text(static_cast<const char *>(data), size);
  const nlohmann::ordered_json doc = nlohmann::ordered_json::parse(text, nullptr, false);
  bool strings = doc.is_object();
  for (const auto &[_, v] : doc.items()) strings = strings && v.is_string();
  if (strings) return doc.dump();
  std::string value = text;
  for (size_t i = 0; i < text.size();)
    if (next_code_point(text, i) < 0) value.clear();
  if (value.empty()) {
    static const char digits[] = "0123456789abcdef";
    for (unsigned char c : text) value += {digits[c >> 4], digits[c & 15]};
  }
  return Json::object({{"weightbus.metadata", value}}).dump();
}

// Finishes or forgets the syncs a crash interrupted, and removes temporary files of interrupted rewrites.
std::vector<std::string> recover(const std::string &dir) {
  std::vector<std::string> notes;
  DIR *d = opendir(dir.c_str());
  if (d == nullptr) throw std::runtime_error("open " + dir + ": " + std::strerror(errno));
  std::vector<std::string> names;
  while (const dirent *e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  const std::string suffix = ".wbjournal";
  for (const std::string &n : names) {
    if (n.ends_with(".wbtmp")) remove_if_exists(join_path(dir, n));
    if (!n.ends_with(suffix)) continue;
    const std::string target = join_path(dir, n.substr(0, n.size() - suffix.size()));
    const Replay r = replay_journal(target);
    notes.push_back(target + (r == Replay::kApplied ? ": finished an interrupted sync from its journal"
                                                    : ": discarded the incomplete journal of an interrupted sync "
                                                      "(the file was not touched)"));
  }
  return notes;
}

// The version's host bytes of every tensor (views are not stored: they are windows on these). CUDA tensors are
// copied to host buffers kept in staging.
std::vector<Tensor> read_tensors(const weightbus::Topic &topic, weightbus::Snapshot &snap,
                                 std::vector<std::vector<char>> &staging) {
  const uint32_t count = doing("count the tensors", [&] { return topic.tensor_count(); });
  std::vector<Tensor> tensors;
  for (uint32_t i = 0; i < count; ++i) {
    const wb_tensor_info info = doing("read tensor " + std::to_string(i), [&] { return snap.tensor(i); });
    if (info.is_view) continue;
    Tensor t{{info.name, info.dtype, std::vector<int64_t>(info.shape, info.shape + info.ndim), 0, info.nbytes},
             info.data};
    if (st::dtype_name(info.dtype) == nullptr)
      throw std::runtime_error("tensor '" + t.entry.name + "' has dtype " + dtype_string(info.dtype) +
                               ", which safetensors cannot store");
    if (info.device_type == WB_DEVICE_CUDA) {
      if (staging.empty())  // the GPU work that wrote the version must be done before its bytes are copied
        doing("wait for the GPU work of the version", [&] { snap.synchronize(kAcquireTimeoutMs); });
      const int32_t ordinal = doing("find the GPU of tensor '" + t.entry.name + "'",
                                    [&] { return weightbus::cuda_device_ordinal(info.device_uuid); });
      staging.emplace_back(info.nbytes);
      copy_device_to_host(ordinal, staging.back().data(), info.data, info.nbytes);
      t.data = staging.back().data();
    }
    tensors.push_back(std::move(t));
  }
  return tensors;
}

// Tensors in topic order, a new shard whenever the next tensor would take the current one past shard_bytes.
std::vector<File> plan(std::vector<Tensor> tensors, uint64_t shard_bytes, const std::string &metadata) {
  std::vector<File> files(1);
  uint64_t at = 0;
  for (Tensor &t : tensors) {
    const uint64_t n = t.entry.end;
    if (at > 0 && at + n > shard_bytes) {
      files.emplace_back();
      at = 0;
    }
    t.entry.begin = at;
    t.entry.end = at + n;
    at += n;
    files.back().tensors.push_back(std::move(t));
  }
  for (size_t k = 0; k < files.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, files.size());
    files[k].name = files.size() == 1 ? st::kSingleFile : name;
    std::vector<st::Entry> entries;
    for (const Tensor &t : files[k].tensors) entries.push_back(t.entry);
    files[k].header = st::header_bytes(entries, metadata);
  }
  return files;
}

// Files of an earlier checkpoint in dir that this one does not write: a single file replaced by shards, shards
// replaced by a single file or by another count of shards.
std::vector<std::string> stale_files(const std::string &dir, const std::vector<File> &files) {
  std::set<std::string> keep;
  for (const File &f : files) keep.insert(f.name);
  std::set<std::string> old = {st::kSingleFile};
  const std::string index = join_path(dir, st::kIndexFile);
  if (path_exists(index)) {
    try {
      const st::Checkpoint cp = st::open_checkpoint(index);
      for (const st::Shard &s : cp.shards) old.insert(s.path.substr(s.path.rfind('/') + 1));
    } catch (const std::exception &) {
      // An index we cannot read names nothing we may delete.
    }
  }
  if (files.size() == 1) old.insert(st::kIndexFile);
  std::vector<std::string> stale;
  for (const std::string &name : old)
    if (!keep.contains(name) && path_exists(join_path(dir, name))) stale.push_back(name);
  return stale;
}

uint64_t file_bytes(const File &f) {
  return f.header.size() + (f.tensors.empty() ? 0 : f.tensors.back().entry.end);
}

Json result_json(const File &f, const SyncResult &r) {
  return Json::object({{"file", f.name},
                       {"action", r.action},
                       {"bytes", r.bytes},
                       {"bytes_compared", r.compared},
                       {"bytes_written", r.written},
                       {"journal_bytes", r.journal}});
}

void make_dir(const std::string &dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw std::runtime_error("create " + dir + ": " + std::strerror(errno));
}

Options parse_options(Args &args) {
  Options o;
  o.dir = args.value("--out").value_or("");
  o.version = static_cast<uint64_t>(args.integer("--version", 1, static_cast<int64_t>(WB_VERSION_MAX)).value_or(0));
  o.shard_bytes = args.bytes("--shard-size", 1, INT64_MAX).value_or(kDefaultShardBytes);
  o.block_bytes = args.bytes("--block-size", 1, 1 << 30).value_or(kDefaultBlockBytes);
  o.topic = args.positionals(1, 1, "TOPIC").front();
  if (o.dir.empty()) throw UsageError("missing --out DIR");
  return o;
}

int run_checkpoint(const GlobalOptions &g, Args &args) {
  const Options o = parse_options(args);
  make_dir(o.dir);
  const std::vector<std::string> notes = recover(o.dir);
  if (!g.json)
    for (const std::string &n : notes) err_line("weightbus: " + n);

  weightbus::Client client = attach(g, "weightbus checkpoint");
  const weightbus::Topic topic = open_topic(client, o.topic);
  const std::string which = o.version ? "version " + std::to_string(o.version) : "the latest version";
  // Held until every file is written: no byte of the version changes meanwhile.
  weightbus::Snapshot snap =
      doing("lease " + which + " of '" + o.topic + "'", [&] { return topic.acquire(o.version, kAcquireTimeoutMs); });
  const uint64_t version = doing("read the snapshot's version", [&] { return snap.version(); });
  const std::string meta = doing("read the version's metadata", [&] { return snap.metadata(); });
  std::vector<std::vector<char>> staging;
  std::vector<Tensor> tensors = read_tensors(topic, snap, staging);
  if (tensors.empty()) throw std::runtime_error("topic '" + o.topic + "' has no tensors to write");
  const std::vector<File> files =
      plan(std::move(tensors), o.shard_bytes, metadata_json(meta.data(), uint32_t(meta.size())));

  uint64_t total = 0;
  for (const File &f : files) total += file_bytes(f);
  std::vector<SyncResult> results;
  {
    Progress progress("checkpoint", total, !g.json);
    for (const File &f : files) {
      std::vector<Piece> pieces = {{f.header.data(), f.header.size()}};
      for (const Tensor &t : f.tensors) pieces.push_back({t.data, t.entry.end - t.entry.begin});
      results.push_back(sync_file(join_path(o.dir, f.name), pieces, o.block_bytes, progress));
    }
  }
  const std::vector<std::string> stale = stale_files(o.dir, files);
  if (files.size() > 1) {
    std::vector<std::string> names;
    std::vector<std::vector<std::string>> tensor_names;
    uint64_t data = 0;
    for (const File &f : files) {
      names.push_back(f.name);
      tensor_names.emplace_back();
      for (const Tensor &t : f.tensors) tensor_names.back().push_back(t.entry.name);
      data += f.tensors.back().entry.end;
    }
    write_file_atomically(join_path(o.dir, st::kIndexFile), st::index_json(names, tensor_names, data));
  }
  for (const std::string &name : stale) remove_if_exists(join_path(o.dir, name));
  if (!stale.empty()) sync_parent_dir(join_path(o.dir, "x"));

  uint64_t compared = 0, written = 0, journal = 0;
  for (const SyncResult &r : results) compared += r.compared, written += r.written, journal += r.journal;
  if (g.json) {
    Json items = Json::array();
    for (size_t k = 0; k < files.size(); ++k) items.push_back(result_json(files[k], results[k]));
    out_json(Json::object({{"topic", o.topic},
                           {"version", version},
                           {"dir", o.dir},
                           {"files", items},
                           {"bytes_compared", compared},
                           {"bytes_written", written},
                           {"journal_bytes", journal},
                           {"removed", stale},
                           {"recovered", notes}}));
    return 0;
  }
  out_line("checkpoint of topic '" + o.topic + "' version " + std::to_string(version) + " in " + o.dir + ":");
  std::vector<std::vector<std::string>> rows = {{"FILE", "ACTION", "BYTES", "COMPARED", "WRITTEN"}};
  for (size_t k = 0; k < files.size(); ++k)
    rows.push_back({files[k].name, results[k].action, std::to_string(results[k].bytes),
                    std::to_string(results[k].compared), std::to_string(results[k].written)});
  print_table(rows, "  ");
  for (const std::string &s : stale) out_line("  removed " + s + " (not part of this checkpoint)");
  out_line("compared " + std::to_string(compared) + " bytes, wrote " + std::to_string(written) + " bytes (" +
           human_bytes(written) + "; journal " + human_bytes(journal) + ")");
  return 0;
}

}  // namespace

const Command kCheckpointCommand = {
    "checkpoint",
    "write a version of a topic as safetensors, rewriting only changed blocks",
    "weightbus checkpoint TOPIC --out DIR [--version V] [--shard-size BYTES] [--block-size BYTES] [--json]",
    R"HELP(Lease a version of TOPIC (default: the latest) and write its tensors (not its views) into DIR as
safetensors, in topic order: DIR/model.safetensors, or when the data exceeds --shard-size, shards
model-0000K-of-0000N.safetensors with model.safetensors.index.json. The header's __metadata__ is the version's
metadata when that is a JSON object of strings (as `weightbus load` publishes), so load then checkpoint
reproduces a file byte for byte.
A file that already exists with the same size and header is compared block by block and only the blocks that
changed are written, through a journal (FILE.wbjournal) that makes the update crash-safe: an interrupted sync
is finished (complete journal) or forgotten (incomplete journal, the file untouched) by the next checkpoint or
load. Other files are written to FILE.wbtmp and renamed. Files of an earlier checkpoint that this one does
not write are removed. See docs/checkpoint.md. A progress bar is drawn when stderr is a terminal.

options:
  --out DIR            where to write (created if missing; its parent must exist)
  --version V          the version to write (default: the latest)
  --shard-size BYTES   largest data bytes per file before sharding (default 5000000000); BYTES here and in
                       --block-size may end in K, M, G or T (powers of 1024): 2G, 64K
  --block-size BYTES   the unit of comparison and rewriting (default 4096, at most 1G)
  --json               print {"topic", "version", "dir", "files": [{"file", "action", "bytes", "bytes_compared",
                       "bytes_written", "journal_bytes"}], "bytes_compared", "bytes_written", "journal_bytes",
                       "removed", "recovered"}; action is created, rewritten, synced or unchanged

examples:
  weightbus checkpoint policy --out ckpt/
  weightbus checkpoint policy --out ckpt/ --version 42 --shard-size 2000000000 --json
)HELP",
    "out: version: shard-size: block-size:",
    run_checkpoint,
    true,
};

}  // namespace wbcli
