// Copy-into bandwidth against a raw device-to-device copy of the same bytes, in the same run (target: copy-into
// >= 90% of raw, or --target-pct), for a bf16 model of ~400 tensors (16 GiB by default, less when GPU memory
// is short).
//
//   gpu-copy-bandwidth [--gib G] [--tensors T] [--iterations K] [--dst-device D] [--target-pct P]
//
// A publisher allocates the model with wb_tensor_alloc_cuda (R = 1) on GPU 0 and publishes it. A reader
// process copies the whole version into its own buffers on GPU D with one wb_snapshot_copy_into per
// iteration (which also orders the stream after the version), and as the baseline copies the same span with
// one cuMemcpyDtoDAsync. D != 0 measures peer copies. Exit status 3 when copy-into stays below the target.
// The copies are checked: the first and last element of every tensor, and every element of a few (the odd-sized
// among them) copied to addresses of every alignment.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common.hpp"

using namespace gpu;

namespace {

struct Options {
  double gib = 16;
  uint32_t tensors = 400;
  uint32_t iterations = 10;
  int dst_device = 0;
  double target_pct = 90;
};

struct Shared {
  uint64_t published;
  uint64_t done;
};

uint64_t align256(uint64_t n) { return (n + 255) / 256 * 256; }

int publisher(const Options &o, const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  size_t free_bytes, total_bytes;
  CU(cu.cuMemGetInfo(&free_bytes, &total_bytes));
  uint64_t bytes = uint64_t(o.gib * double(1ull << 30));
  // The reader needs as much again on the same GPU (unless it copies to another one); keep 2 GiB spare.
  uint64_t copies = o.dst_device == 0 ? 2 : 1;
  uint64_t fit = free_bytes > (2ull << 30) ? (free_bytes - (2ull << 30)) / copies : 0;
  if (bytes > fit) {
    printf("only %.1f GiB of GPU memory free: the model shrinks from %.1f to %.1f GiB\n",
           double(free_bytes) / (1ull << 30), o.gib, double(fit) / (1ull << 30));
    bytes = fit;
  }
  Model m = make_model(o.tensors, bytes);
  wb_client *client = attach(socket, "bandwidth-publisher");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  wb_topic *topic;
  WB(wb_topic_create(client, "model", &opts, &topic));
  WB(wb_tensor_alloc_cuda(topic, m.specs.data(), o.tensors, 0));
  wb_update *update;
  WB(wb_update_begin(topic, 5000, &update));
  for (uint32_t i = 0; i < o.tensors; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_update_tensor_at(update, i, &info));
    CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(1, i), m.elements[i], stream));
  }
  WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
  __atomic_store_n(&sh->published, 1, __ATOMIC_RELEASE);
  if (!await(&sh->done, 1, 500)) die("the reader did not finish");
  WB(wb_detach(client));
  return 0;
}

double seconds_of(CUstream stream, const std::function<void()> &work) {
  double start = now_s();
  work();
  CU(cu.cuStreamSynchronize(stream));
  return now_s() - start;
}

// Copies a few tensors (first, second, last, and 77-element ones: 154 bytes) in one call to dst addresses of
// every alignment (16, 8, 4, 2 and 1 bytes: each access width of the copy kernel, and its byte tails) and checks
// every element, and that the 64 bytes on either side of each stay untouched.
void check_every_element(wb_snapshot *snap, const std::vector<wb_tensor_info> &infos, int device, CUstream stream) {
  const uint32_t count = uint32_t(infos.size());
  std::set<uint32_t> picks;
  for (uint32_t i : {0u, 1u, 7u, 15u, count - 1}) picks.insert(std::min(i, count - 1));
  constexpr uint64_t kGuard = 64;
  constexpr uint8_t kUntouched = 0xab;
  const uint64_t offsets[] = {0, 8, 4, 2, 1};
  std::vector<uint64_t> at;  // each target's offset in the scratch buffer, after a guard
  uint64_t bytes = 0;
  for (uint32_t i : picks) {
    at.push_back(bytes + kGuard + offsets[at.size() % 5]);
    bytes = align256(at.back() + infos[i].nbytes + kGuard);
  }
  CUdeviceptr scratch;
  CU(cu.cuMemAlloc(&scratch, bytes));
  CU(cu.cuMemsetD8(scratch, kUntouched, bytes));
  std::vector<wb_copy_target> targets;
  for (uint32_t i : picks) {
    wb_copy_target t = WB_COPY_TARGET_INIT;
    t.index = i;
    t.dst = reinterpret_cast<void *>(scratch + at[targets.size()]);
    t.dst_bytes = infos[i].nbytes;
    t.device = device;
    targets.push_back(t);
  }
  WB(wb_snapshot_copy_into(snap, targets.data(), uint32_t(targets.size()), stream));
  CU(cu.cuStreamSynchronize(stream));
  std::vector<uint8_t> host(bytes);
  CU(cu.cuMemcpyDtoH(host.data(), scratch, bytes));
  CU(cu.cuMemFree(scratch));
  for (size_t k = 0; k < targets.size(); ++k) {
    const uint32_t i = targets[k].index;
    const uint8_t *dst = host.data() + at[k];
    for (uint64_t e = 0; e < infos[i].nbytes / 2; ++e) {
      uint16_t v;
      memcpy(&v, dst + 2 * e, 2);
      if (v != pattern(1, i)) {
        die("tensor %u copied to an address %llu bytes past 256-byte alignment: element %llu is %#x", i,
            (unsigned long long)(at[k] % 256), (unsigned long long)e, v);
      }
    }
    for (uint64_t b = 0; b < kGuard; ++b) {
      if (dst[-1 - int64_t(b)] != kUntouched || dst[infos[i].nbytes + b] != kUntouched) {
        die("the copy of tensor %u wrote outside its %llu bytes", i, (unsigned long long)infos[i].nbytes);
      }
    }
  }
}

int reader(const Options &o, const std::string &socket) {
  init_cuda(nullptr, o.dst_device);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "bandwidth-reader");
  wb_topic *topic = open_topic(client, "model", 10000);
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(topic, 1, 5000, &snap));
  uint32_t count;
  WB(wb_topic_tensor_count(topic, &count));
  std::vector<wb_copy_target> targets(count, wb_copy_target WB_COPY_TARGET_INIT);
  std::vector<wb_tensor_info> infos(count, wb_tensor_info WB_TENSOR_INFO_INIT);
  uint64_t dst_bytes = 0, tensor_bytes = 0;
  for (uint32_t i = 0; i < count; ++i) {
    WB(wb_snapshot_tensor_at(snap, i, &infos[i]));
    dst_bytes += align256(infos[i].nbytes);
    tensor_bytes += infos[i].nbytes;
  }
  CUdeviceptr dst;
  CU(cu.cuMemAlloc(&dst, dst_bytes));
  uint64_t at = 0;
  for (uint32_t i = 0; i < count; ++i) {
    targets[i].index = i;
    targets[i].dst = reinterpret_cast<void *>(dst + at);
    targets[i].dst_bytes = infos[i].nbytes;
    targets[i].device = o.dst_device;
    at += align256(infos[i].nbytes);
  }
  // The owned allocation packs the tensors in order: the raw baseline copies the span they cover.
  CUdeviceptr src = reinterpret_cast<CUdeviceptr>(infos[0].data);
  uint64_t span = reinterpret_cast<CUdeviceptr>(infos[count - 1].data) + infos[count - 1].nbytes - src;
  printf("model: %u bf16 tensors, %.2f GiB (span %.2f GiB), copied from GPU 0 to GPU %d, %u iterations each\n", count,
         double(tensor_bytes) / (1ull << 30), double(span) / (1ull << 30), o.dst_device, o.iterations);
  auto copy_into = [&] { WB(wb_snapshot_copy_into(snap, targets.data(), count, stream)); };
  auto raw = [&] { CU(cu.cuMemcpyDtoDAsync(dst, src, span, stream)); };
  seconds_of(stream, copy_into);  // warm-up: opens the allocation's mapping on the stream's device
  seconds_of(stream, raw);
  std::vector<double> t_copy, t_raw;
  for (uint32_t k = 0; k < o.iterations; ++k) {  // interleaved, so that both see the same clocks and neighbours
    t_copy.push_back(seconds_of(stream, copy_into));
    t_raw.push_back(seconds_of(stream, raw));
  }
  // Check the copy-into result: every tensor's first and last element.
  seconds_of(stream, copy_into);
  for (uint32_t i = 0; i < count; ++i) {
    uint16_t ends[2];
    CU(cu.cuMemcpyDtoH(&ends[0], reinterpret_cast<CUdeviceptr>(targets[i].dst), 2));
    CU(cu.cuMemcpyDtoH(&ends[1], reinterpret_cast<CUdeviceptr>(targets[i].dst) + infos[i].nbytes - 2, 2));
    if (ends[0] != pattern(1, i) || ends[1] != pattern(1, i)) {
      die("tensor %u copied wrong: %#x %#x", i, ends[0], ends[1]);
    }
  }
  check_every_element(snap, infos, o.dst_device, stream);
  WB(wb_snapshot_release(snap));
  double copy_s = percentile(t_copy, 50), raw_s = percentile(t_raw, 50);
  double copy_gbs = double(tensor_bytes) / copy_s / 1e9, raw_gbs = double(span) / raw_s / 1e9;
  printf("copy-into: %.1f GB/s (%.2f ms); raw cuMemcpyDtoDAsync: %.1f GB/s (%.2f ms); ratio %.1f%%\n", copy_gbs,
         copy_s * 1e3, raw_gbs, raw_s * 1e3, 100 * copy_gbs / raw_gbs);
  const bool met = 100 * copy_gbs >= o.target_pct * raw_gbs;
  result("copy-bandwidth", "%s tensors=%u gib=%.2f dst_device=%d copy_into_gbs=%.1f raw_d2d_gbs=%.1f ratio_pct=%.1f target_pct=%.0f",
         met ? "PASS" : "BELOW-TARGET", count, double(tensor_bytes) / (1ull << 30), o.dst_device, copy_gbs, raw_gbs,
         100 * copy_gbs / raw_gbs, o.target_pct);
  WB(wb_detach(client));
  return met ? 0 : 3;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--gib") {
      o.gib = atof(argv[i + 1]);
    } else if (flag == "--tensors") {
      o.tensors = uint32_t(atoi(argv[i + 1]));
    } else if (flag == "--iterations") {
      o.iterations = uint32_t(atoi(argv[i + 1]));
    } else if (flag == "--dst-device") {
      o.dst_device = atoi(argv[i + 1]);
    } else if (flag == "--target-pct") {
      o.target_pct = atof(argv[i + 1]);
    } else {
      die("unknown flag %s", flag.c_str());
    }
  }
  skip_without_gpu();
  auto *sh = static_cast<Shared *>(shared_memory(sizeof(Shared)));
  Broker broker;
  pid_t pub = spawn([&] { return publisher(o, broker.socket(), sh); });
  if (!await(&sh->published, 1, 300)) die("the publisher did not publish");
  int status = wait_child(spawn([&] { return reader(o, broker.socket()); }), 500);
  __atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
  int publisher_status = wait_child(pub, 60);
  return publisher_status != 0 ? 1 : status;
}
