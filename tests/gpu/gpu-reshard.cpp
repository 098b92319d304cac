// N trainer ranks publish one bf16 model together, each its torch.chunk shard of every tensor along dimension 0,
// and M server ranks copy exactly their vLLM tensor-parallel slices into their own GPU buffers with a plan,
// every element of every destination checked on the host for every version a reader leases.
//
//   gpu-reshard [--ranks N] [--readers M] [--versions V] [--path vmm|legacy] [--kill 0|1] [--spread 0|1]
//               [--host 0|1] [--armed 0|1]
//
// The model (Qwen-like, small): q/k/v with grouped-query attention (32 heads, 8 KV heads), o_proj and down_proj
// read row-parallel (their slices cut dimension 1: strided copies), gate/up fused, an embedding of a vocabulary
// vLLM pads, a replicated norm. Element i of tensor t in version v holds value(v, t, i) (16 bits, as bf16).
// Ranks write their shards with GPU copies on their stream and publish on it. --path vmm: shards of
// wb_shard_alloc_cuda, which outlive their rank: with --kill 1 rank 1 is killed with SIGKILL a third of the way
// and started again (it takes its rank over). --path legacy: cuMemAlloc memory registered in place
// (wb_shard_register_cuda). --spread 1: rank r on GPU r % G and reader m on GPU (m + 1) % G (peer copies).
// --host 1: every other destination of a reader is host memory (the plan's copies one driver copy each, not the
// plan kernel's). --armed 1: each reader arms its plan for the version after the one it read (wb_plan_arm)
// before that version is published, and wb_armed_wait runs the copies.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common.hpp"

using namespace gpu;

namespace {

struct Options {
  uint32_t ranks = 4, readers = 2, versions = 60;
  std::string path = "vmm";
  bool kill = false, spread = false, host = false, armed = false;
};

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    const char *v = argv[i + 1];
    if (flag == "--ranks") o.ranks = uint32_t(atoi(v));
    else if (flag == "--readers") o.readers = uint32_t(atoi(v));
    else if (flag == "--versions") o.versions = uint32_t(atoi(v));
    else if (flag == "--path") o.path = v;
    else if (flag == "--kill") o.kill = atoi(v) != 0;
    else if (flag == "--spread") o.spread = atoi(v) != 0;
    else if (flag == "--host") o.host = atoi(v) != 0;
    else if (flag == "--armed") o.armed = atoi(v) != 0;
    else die("unknown flag %s", flag.c_str());
  }
  if (o.path != "vmm" && o.path != "legacy") die("--path is vmm or legacy");
  if (o.ranks < 1 || o.ranks > 8 || o.readers < 1 || o.readers > 16) die("--ranks 1..8, --readers 1..16");
  return o;
}

constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 16, kHidden = 256, kInter = 768, kVocab = 1000;

struct Logical {
  const char *name;
  uint32_t ndim;
  int64_t shape[2];
  bool replicated;
};

enum { kQ, kK, kV, kO, kGate, kUp, kDown, kEmbed, kNorm, kTensors };

const Logical kModel[kTensors] = {
    {"q", 2, {kHeads * kHeadDim, kHidden}, false},   {"k", 2, {kKvHeads * kHeadDim, kHidden}, false},
    {"v", 2, {kKvHeads * kHeadDim, kHidden}, false}, {"o", 2, {kHidden, kHeads * kHeadDim}, false},
    {"gate", 2, {kInter, kHidden}, false},           {"up", 2, {kInter, kHidden}, false},
    {"down", 2, {kHidden, kInter}, false},           {"embed", 2, {kVocab, kHidden}, false},
    {"norm", 1, {kHidden, 0}, true},
};

uint16_t value(uint64_t v, uint32_t t, uint64_t i) { return uint16_t(v * 131 + t * 17 + i * 3); }

uint64_t index_of(const Logical &l, int64_t row, int64_t col) {
  return l.ndim == 1 ? uint64_t(col) : uint64_t(row) * uint64_t(l.shape[1]) + uint64_t(col);
}

struct Shared {
  uint64_t torn;
  uint64_t readers_done;
  uint64_t reads[16];
  uint64_t gpu_arms;  // --armed: reads whose copies were enqueued before the version (wb_armed_on_stream)
  uint64_t claimed;   // of which the GPU made the copies, let go by the commit (wb_plan_info.gpu_arms_claimed)
};

int device_count_in_child() {
  int count = 0;
  CU(cu.cuDeviceGetCount(&count));
  return count;
}

// ---- a publishing rank ------------------------------------------------------------------------------------

wb_shard_spec shard_of(const Logical &l, uint32_t rank, uint32_t ranks) {
  wb_shard_spec s = WB_SHARD_SPEC_INIT;
  s.dtype = WB_DTYPE_BF16;
  s.name = l.name;
  s.ndim = l.ndim;
  for (uint32_t d = 0; d < l.ndim; ++d) s.logical_shape[d] = s.extent[d] = l.shape[d];
  if (l.replicated) {
    s.flags = WB_SHARD_REPLICATED;
  } else {
    WB(wb_split(l.shape[0], rank, ranks, WB_SPLIT_CHUNK, &s.offset[0], &s.extent[0]));
  }
  return s;
}

uint64_t elements(const wb_shard_spec &s) {
  uint64_t n = 1;
  for (uint32_t d = 0; d < s.ndim; ++d) n *= uint64_t(s.extent[d]);
  return n;
}

int rank_main(const Options &o, const std::string &socket, uint32_t rank, Shared *shared) {
  int count = 1;
  init_cuda(nullptr, 0);
  count = device_count_in_child();
  int ordinal = o.spread ? int(rank % uint32_t(count)) : 0;
  init_cuda(nullptr, ordinal);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, 0));
  wb_client *client = attach(socket, "rank");
  wb_rank_options opts = WB_RANK_OPTIONS_INIT;
  opts.rank = rank;
  opts.ranks = o.ranks;
  opts.replicas = 2;
  wb_topic *topic = nullptr;
  double deadline = now_s() + 30;
  int rc;
  while ((rc = wb_topic_create_rank(client, "model", &opts, &topic)) == WB_E_BUSY && now_s() < deadline) {
    usleep(2000);
  }
  WB(rc);
  wb_shard_spec specs[kTensors];
  for (uint32_t t = 0; t < kTensors; ++t) specs[t] = shard_of(kModel[t], rank, o.ranks);
  if (o.path == "vmm") {
    WB(wb_shard_alloc_cuda(topic, specs, kTensors, ordinal));
  } else {
    void *pointers[2 * kTensors];
    for (uint32_t r = 0; r < 2; ++r) {
      for (uint32_t t = 0; t < kTensors; ++t) {
        CUdeviceptr p;
        CU(cu.cuMemAlloc(&p, std::max<uint64_t>(2, elements(specs[t]) * 2)));
        pointers[r * kTensors + t] = reinterpret_cast<void *>(p);
      }
    }
    WB(wb_shard_register_cuda(topic, specs, pointers, kTensors));
  }
  std::vector<std::vector<uint16_t>> host(kTensors);
  for (;;) {
    wb_rank_info me = WB_RANK_INFO_INIT;
    WB(wb_topic_rank_info(topic, rank, &me));
    if (me.published >= o.versions) break;
    wb_update *update;
    WB(wb_update_begin(topic, 30000, &update));
    uint64_t v;
    WB(wb_update_version(update, &v));
    for (uint32_t t = 0; t < kTensors; ++t) {
      const wb_shard_spec &s = specs[t];
      host[t].resize(elements(s));
      int64_t rows = s.ndim == 1 ? 1 : s.extent[0], cols = s.extent[s.ndim - 1];
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          host[t][uint64_t(r * cols + c)] = value(v, t, index_of(kModel[t], s.offset[0] + r, c));
        }
      }
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      WB(wb_update_shard(update, s.name, 0, &info));
      if (!host[t].empty()) {
        CU(cu.cuMemcpyHtoDAsync(CUdeviceptr(info.data), host[t].data(), host[t].size() * 2, stream));
      }
    }
    WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
  }
  // Legacy IPC memory dies with its exporter: stay until every reader has read the last version.
  if (o.path == "legacy" && !await(&shared->readers_done, o.readers, 300)) die("readers did not finish");
  WB(wb_topic_close(topic));
  WB(wb_detach(client));
  return 0;
}

// ---- a reading rank ---------------------------------------------------------------------------------------

struct Dests {
  std::vector<wb_slice_dest> dests;
  std::vector<wb_slice_part> parts;
  std::vector<uint32_t> tensor_of_part;
};

void add_dest(Dests *d, uint32_t first) {
  wb_slice_dest dest = WB_SLICE_DEST_INIT;
  dest.first_part = first;
  dest.part_count = uint32_t(d->parts.size()) - first;
  dest.dtype = WB_DTYPE_BF16;
  dest.ndim = d->parts[first].ndim;
  for (uint32_t i = first; i < d->parts.size(); ++i) {
    dest.shape[0] += d->parts[i].extent[0] + d->parts[i].pad;
    if (dest.ndim == 2) dest.shape[1] = d->parts[i].extent[1];
  }
  d->dests.push_back(dest);
}

wb_slice_part whole(uint32_t t) {
  wb_slice_part p = WB_SLICE_PART_INIT;
  p.name = kModel[t].name;
  p.ndim = kModel[t].ndim;
  for (uint32_t k = 0; k < p.ndim; ++k) p.extent[k] = kModel[t].shape[k];
  return p;
}

Dests tp_layout(uint32_t m, uint32_t M) {
  Dests d;
  wb_slice_part qkv[3];
  WB(wb_parts_qkv("q", "k", "v", kHeads, kKvHeads, kHeadDim, kHidden, m, M, qkv));
  for (uint32_t i = 0; i < 3; ++i) {
    d.parts.push_back(qkv[i]);
    d.tensor_of_part.push_back(kQ + i);
  }
  add_dest(&d, 0);
  for (uint32_t t : {uint32_t(kO), uint32_t(kDown)}) {  // row-parallel: a slice of dimension 1
    wb_slice_part p = whole(t);
    WB(wb_split(kModel[t].shape[1], m, M, WB_SPLIT_EVEN, &p.offset[1], &p.extent[1]));
    uint32_t first = uint32_t(d.parts.size());
    d.parts.push_back(p);
    d.tensor_of_part.push_back(t);
    add_dest(&d, first);
  }
  const char *names[2] = {"gate", "up"};
  int64_t rows[2] = {kInter, kInter};
  wb_slice_part merged[2];
  WB(wb_parts_merged(names, rows, 2, kHidden, m, M, merged));
  uint32_t first = uint32_t(d.parts.size());
  for (uint32_t i = 0; i < 2; ++i) {
    d.parts.push_back(merged[i]);
    d.tensor_of_part.push_back(kGate + i);
  }
  add_dest(&d, first);
  wb_slice_part embed = whole(kEmbed);
  int64_t padded;
  WB(wb_split_vocab(kVocab, 64, m, M, &embed.offset[0], &embed.extent[0], &padded));
  embed.pad = padded - embed.extent[0];
  first = uint32_t(d.parts.size());
  d.parts.push_back(embed);
  d.tensor_of_part.push_back(kEmbed);
  add_dest(&d, first);
  first = uint32_t(d.parts.size());
  d.parts.push_back(whole(kNorm));
  d.tensor_of_part.push_back(kNorm);
  add_dest(&d, first);
  return d;
}

uint64_t dest_elements(const wb_slice_dest &d) {
  uint64_t n = 1;
  for (uint32_t k = 0; k < d.ndim; ++k) n *= uint64_t(d.shape[k]);
  return n;
}

// The first element of dests[i] that differs from the reference sliced from version v, or -1.
int64_t check(const Dests &d, uint32_t i, const std::vector<uint16_t> &got, uint64_t v) {
  const wb_slice_dest &dest = d.dests[i];
  uint64_t at = 0;
  for (uint32_t j = dest.first_part; j < dest.first_part + dest.part_count; ++j) {
    const wb_slice_part &p = d.parts[j];
    uint32_t t = d.tensor_of_part[j];
    int64_t rows = p.ndim == 1 ? 1 : p.extent[0], cols = p.extent[p.ndim - 1];
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c, ++at) {
        int64_t row = p.ndim == 1 ? 0 : p.offset[0] + r;
        if (got[at] != value(v, t, index_of(kModel[t], row, p.offset[p.ndim - 1] + c))) return int64_t(at);
      }
    }
    for (int64_t k = 0; k < p.pad * cols; ++k, ++at) {
      if (got[at] != 0) return int64_t(at);
    }
  }
  return -1;
}

int reader_main(const Options &o, const std::string &socket, uint32_t m, Shared *shared) {
  init_cuda(nullptr, 0);
  int count = device_count_in_child();
  int ordinal = o.spread ? int((m + 1) % uint32_t(count)) : 0;
  init_cuda(nullptr, ordinal);
  CUstream stream;
  // --armed: a non-blocking stream, as GPU arms want (weightbus.h); a blocking one otherwise.
  CU(cu.cuStreamCreate(&stream, o.armed ? CU_STREAM_NON_BLOCKING : 0));
  wb_client *client = attach(socket, "reader");
  wb_topic *topic = open_topic(client, "model", 30000);
  Dests d = tp_layout(m, o.readers);
  std::vector<CUdeviceptr> buffers(d.dests.size());
  std::vector<std::vector<uint16_t>> in_host(d.dests.size());  // --host: the host destinations
  for (size_t i = 0; i < d.dests.size(); ++i) {
    d.dests[i].dst_bytes = dest_elements(d.dests[i]) * 2;
    if (o.host && i % 2 == 1) {
      in_host[i].resize(dest_elements(d.dests[i]));
      d.dests[i].dst = in_host[i].data();
      d.dests[i].device = -1;
      continue;
    }
    CU(cu.cuMemAlloc(&buffers[i], d.dests[i].dst_bytes));
    d.dests[i].dst = reinterpret_cast<void *>(buffers[i]);
    d.dests[i].device = ordinal;
  }
  wb_plan *plan = nullptr;
  double deadline = now_s() + 30;
  int rc;
  while ((rc = wb_plan_create(topic, d.dests.data(), uint32_t(d.dests.size()), d.parts.data(),
                              uint32_t(d.parts.size()), &plan)) == WB_E_STATE &&
         now_s() < deadline) {
    usleep(2000);
  }
  WB(rc);
  std::vector<std::vector<uint16_t>> host(d.dests.size());
  uint64_t seen = 0;
  while (seen < o.versions) {
    // Poisoned first, so that a destination the copies missed shows.
    for (size_t i = 0; i < buffers.size(); ++i) {
      if (buffers[i] != 0) CU(cu.cuMemsetD8Async(buffers[i], 0xee, d.dests[i].dst_bytes, stream));
      else memset(in_host[i].data(), 0xee, d.dests[i].dst_bytes);
    }
    wb_snapshot *snapshot;
    if (o.armed) {
      wb_armed *armed;
      WB(wb_plan_arm(plan, seen, stream, &armed));
      int on_stream = 0;
      WB(wb_armed_on_stream(armed, &on_stream));
      if (on_stream) __atomic_add_fetch(&shared->gpu_arms, 1, __ATOMIC_SEQ_CST);
      WB(wb_armed_wait(armed, 30000, &snapshot));  // the plan's copies are on stream
    } else {
      uint64_t latest;
      WB(wb_topic_wait(topic, seen, 30000, &latest));
      WB(wb_snapshot_acquire(topic, 0, 30000, &snapshot));
      WB(wb_plan_run(plan, snapshot, stream));
    }
    uint64_t v;
    WB(wb_snapshot_version(snapshot, &v));
    for (size_t i = 0; i < buffers.size(); ++i) {
      host[i].resize(dest_elements(d.dests[i]));
      if (buffers[i] != 0) CU(cu.cuMemcpyDtoHAsync(host[i].data(), buffers[i], d.dests[i].dst_bytes, stream));
    }
    CU(cu.cuStreamSynchronize(stream));
    for (size_t i = 0; i < buffers.size(); ++i) {
      if (buffers[i] == 0) host[i] = in_host[i];
    }
    WB(wb_snapshot_release(snapshot));
    for (uint32_t i = 0; i < host.size(); ++i) {
      int64_t bad = check(d, i, host[i], v);
      if (bad >= 0) {
        fprintf(stderr, "reader %u: version %llu dests[%u] element %lld is %u\n", m, (unsigned long long)v, i,
                (long long)bad, host[i][uint64_t(bad)]);
        __atomic_add_fetch(&shared->torn, 1, __ATOMIC_SEQ_CST);
        return 1;
      }
    }
    __atomic_add_fetch(&shared->reads[m], 1, __ATOMIC_SEQ_CST);
    seen = v;
  }
  __atomic_add_fetch(&shared->readers_done, 1, __ATOMIC_SEQ_CST);
  wb_plan_info info = WB_PLAN_INFO_INIT;
  WB(wb_plan_get_info(plan, &info));
  __atomic_add_fetch(&shared->claimed, info.gpu_arms_claimed, __ATOMIC_SEQ_CST);
  wb_plan_destroy(plan);
  WB(wb_topic_close(topic));
  WB(wb_detach(client));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  skip_without_gpu();
  Broker broker;
  auto *shared = static_cast<Shared *>(shared_memory(sizeof(Shared)));
  std::vector<pid_t> ranks(o.ranks), readers(o.readers);
  for (uint32_t r = 0; r < o.ranks; ++r) ranks[r] = spawn([&, r] { return rank_main(o, broker.socket(), r, shared); });
  for (uint32_t m = 0; m < o.readers; ++m) {
    readers[m] = spawn([&, m] { return reader_main(o, broker.socket(), m, shared); });
  }
  bool killed = false;
  if (o.kill && o.ranks >= 2) {
    // A third of the way: SIGKILL rank 1 mid-run and start it again; it takes its rank (and shards) over.
    wb_client *watcher = attach(broker.socket(), "watcher");
    wb_topic *topic = open_topic(watcher, "model", 30000);
    uint64_t latest = 0;
    while (latest < o.versions / 3) WB(wb_topic_wait(topic, latest, 30000, &latest));
    kill(ranks[1], SIGKILL);
    wait_child(ranks[1], 30);
    ranks[1] = spawn([&] { return rank_main(o, broker.socket(), 1, shared); });
    killed = true;
    WB(wb_topic_close(topic));
    WB(wb_detach(watcher));
  }
  int failures = 0;
  for (uint32_t r = 0; r < o.ranks; ++r) failures += wait_child(ranks[r], 300) != 0;
  for (uint32_t m = 0; m < o.readers; ++m) failures += wait_child(readers[m], 300) != 0;
  uint64_t reads = 0;
  for (uint32_t m = 0; m < o.readers; ++m) reads += shared->reads[m];
  // Armed GPU destinations only, with GPU arms on (run.sh sets WEIGHTBUS_GPU_ARMS): some reads must be GPU arms
  // (not those armed when the latest was newer already, nor the first of each reader: its plan had not run).
  const char *gpu_arms = getenv("WEIGHTBUS_GPU_ARMS");
  bool on = gpu_arms != nullptr && *gpu_arms != '\0' && strcmp(gpu_arms, "off") != 0;
  bool arms_ok = !o.armed || o.host || !on || shared->gpu_arms > 0;
  bool pass = failures == 0 && shared->torn == 0 && arms_ok;
  result("gpu-reshard",
         "%s ranks=%u readers=%u path=%s%s versions=%u reads=%llu torn=%llu killed=%d gpu_arms=%llu claimed=%llu",
         pass ? "PASS" : "FAIL", o.ranks, o.readers, o.path.c_str(), o.host ? " host-dests" : "", o.versions,
         (unsigned long long)reads, (unsigned long long)shared->torn, killed ? 1 : 0,
         (unsigned long long)shared->gpu_arms, (unsigned long long)shared->claimed);
  return pass ? 0 : 1;
}
