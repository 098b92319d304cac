// Two processes exchange versions of a bf16 model on the GPU with no torn reads.
//
//   gpu-exchange [--path legacy|vmm|vmm-registered] [--replicas R] [--versions N] [--tensors T] [--mib M]
//                [--publisher-devices LIST|unset] [--reader-devices LIST|unset]
//
// The publisher writes every element of tensor i in version v as pattern(v, i) with GPU work on its stream
// and publishes on that stream; it begins version v + 1 as soon as the reader has leased v, so that every
// update overlaps a read (R = 1: begin waits for the release; R >= 2: it writes another replica meanwhile) and
// the reader sees every version. The reader waits for each new version, leases the latest, reads every tensor
// (odd versions through wb_snapshot_copy_into, even ones in place after wb_snapshot_wait_stream), releases,
// and checks every element on the host: one element of another version or tensor is a torn read.
// Storage paths: legacy = cuMemAlloc memory registered (half the tensors carved from one block, as PyTorch's
// caching allocator does, half in blocks of their own), vmm = wb_tensor_alloc_cuda, vmm-registered = VMM
// memory of many back-to-back chunks registered (as PyTorch's expandable segments), tensors straddling chunks.
#include <unistd.h>

#include <cstring>
#include <string>

#include "common.hpp"

using namespace gpu;

namespace {

struct Options {
  std::string path = "vmm";
  uint32_t replicas = 2;
  uint32_t versions = 1000;
  uint32_t tensors = 64;
  uint64_t mib = 64;
  const char *publisher_devices = nullptr;  // nullptr: unset
  const char *reader_devices = nullptr;
};

struct Shared {
  uint64_t topic_ready;
  uint64_t reader_ready;
  uint64_t reader_done;
  uint64_t acquired;  // the version the reader leased last
  uint64_t versions_read;
  uint64_t copy_reads;
  uint64_t direct_reads;
  uint64_t torn;
  uint64_t last_version;
  int64_t reader_ordinal;  // the reader's ordinal of the publisher's GPU
};

uint64_t align256(uint64_t n) { return (n + 255) / 256 * 256; }

const char *devices_arg(const char *text) { return strcmp(text, "unset") == 0 ? nullptr : text; }

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    const char *v = argv[i + 1];
    if (flag == "--path") {
      o.path = v;
    } else if (flag == "--replicas") {
      o.replicas = uint32_t(atoi(v));
    } else if (flag == "--versions") {
      o.versions = uint32_t(atoi(v));
    } else if (flag == "--tensors") {
      o.tensors = uint32_t(atoi(v));
    } else if (flag == "--mib") {
      o.mib = uint64_t(atoll(v));
    } else if (flag == "--publisher-devices") {
      o.publisher_devices = devices_arg(v);
    } else if (flag == "--reader-devices") {
      o.reader_devices = devices_arg(v);
    } else {
      die("unknown flag %s", flag.c_str());
    }
  }
  if (o.path != "legacy" && o.path != "vmm" && o.path != "vmm-registered") {
    die("--path is legacy, vmm or vmm-registered");
  }
  return o;
}

// cuMemAlloc storage for every replica: pointers[r * count + i].
std::vector<void *> legacy_storage(const Model &m, uint32_t replicas) {
  uint32_t count = uint32_t(m.specs.size());
  std::vector<void *> pointers(size_t(count) * replicas);
  for (uint32_t r = 0; r < replicas; ++r) {
    uint64_t block_bytes = 0;
    for (uint32_t i = 0; i < count / 2; ++i) block_bytes += align256(m.elements[i] * 2);
    CUdeviceptr block;
    CU(cu.cuMemAlloc(&block, block_bytes));
    uint64_t at = 0;
    for (uint32_t i = 0; i < count; ++i) {
      CUdeviceptr p = block + at;
      if (i < count / 2) {
        at += align256(m.elements[i] * 2);
      } else {
        CU(cu.cuMemAlloc(&p, m.elements[i] * 2));
      }
      pointers[size_t(r) * count + i] = reinterpret_cast<void *>(p);
    }
  }
  return pointers;
}

// One address range of back-to-back VMM chunks (each its own cuMemCreate, exportable as a POSIX fd), holding
// every replica: tensors packed 256 bytes apart straddle chunk boundaries.
std::vector<void *> vmm_storage(const Model &m, uint32_t replicas) {
  uint32_t count = uint32_t(m.specs.size());
  uint64_t replica_bytes = 0;
  for (uint64_t e : m.elements) replica_bytes += align256(e * 2);
  uint64_t chunk, total;
  CUdeviceptr base = map_vmm_chunks(replica_bytes * replicas, 4, &chunk, &total);
  printf("vmm-registered: %llu chunks of %llu bytes\n", (unsigned long long)(total / chunk), (unsigned long long)chunk);
  std::vector<void *> pointers(size_t(count) * replicas);
  for (uint32_t r = 0; r < replicas; ++r) {
    uint64_t at = r * replica_bytes;
    for (uint32_t i = 0; i < count; ++i) {
      pointers[size_t(r) * count + i] = reinterpret_cast<void *>(base + at);
      at += align256(m.elements[i] * 2);
    }
  }
  return pointers;
}

int publisher(const Options &o, const Model &m, const std::string &socket, Shared *shared) {
  init_cuda(o.publisher_devices);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "exchange-publisher");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = o.replicas;
  wb_topic *topic;
  WB(wb_topic_create(client, "model", &opts, &topic));
  uint32_t count = uint32_t(m.specs.size());
  std::vector<void *> pointers;
  if (o.path == "vmm") {
    WB(wb_tensor_alloc_cuda(topic, m.specs.data(), count, 0));
  } else {
    pointers = o.path == "legacy" ? legacy_storage(m, o.replicas) : vmm_storage(m, o.replicas);
    WB(wb_tensor_register_cuda(topic, m.specs.data(), pointers.data(), count));
  }
  __atomic_store_n(&shared->topic_ready, 1, __ATOMIC_RELEASE);
  if (!await(&shared->reader_ready, 1, 60)) die("the reader did not start");
  for (uint64_t v = 1; v <= o.versions; ++v) {
    if (!await(&shared->acquired, v - 1, 120)) {
      die("the reader stopped at version %llu", (unsigned long long)shared->acquired);
    }
    wb_update *update;
    WB(wb_update_begin(topic, 30000, &update));
    for (uint32_t i = 0; i < count; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      WB(wb_update_tensor_at(update, i, &info));
      if (!pointers.empty()) {  // registered: the exporter writes through its own pointers
        bool own = false;
        for (uint32_t r = 0; r < o.replicas; ++r) own |= info.data == pointers[size_t(r) * count + i];
        if (!own) die("tensor %u: write pointer %p is none of the registered replicas", i, info.data);
      }
      CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(v, i), m.elements[i], stream));
    }
    WB(wb_update_publish_on_stream(update, stream, &v, sizeof(v), nullptr));
  }
  if (!await(&shared->reader_done, 1, 300)) die("the reader did not finish");
  CU(cu.cuStreamSynchronize(stream));
  WB(wb_topic_close(topic));
  WB(wb_detach(client));
  return 0;
}

int reader(const Options &o, const std::string &socket, Shared *shared) {
  init_cuda(o.reader_devices);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  if (!await(&shared->topic_ready, 1, 120)) die("the publisher did not create its topic");
  wb_client *client = attach(socket, "exchange-reader");
  wb_topic *topic = open_topic(client, "model", 20000);
  uint32_t count;
  WB(wb_topic_tensor_count(topic, &count));
  std::vector<uint64_t> offsets, bytes;
  uint64_t total = 0;
  int32_t ordinal = -1;  // the tensors' GPU in this process (found by UUID); dst is on this process's GPU 0
  for (uint32_t i = 0; i < count; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_topic_tensor(topic, i, &info));
    if (info.device_type != WB_DEVICE_CUDA) die("tensor %u is not a CUDA tensor", i);
    WB(wb_cuda_device_ordinal(info.device_uuid, &ordinal));  // by UUID, whatever CUDA_VISIBLE_DEVICES says
    offsets.push_back(total);
    bytes.push_back(info.nbytes);
    total += align256(info.nbytes);
  }
  CUdeviceptr dst;
  void *host;
  CU(cu.cuMemAlloc(&dst, total));
  CU(cu.cuMemAllocHost(&host, total));
  std::vector<wb_copy_target> targets(count, wb_copy_target WB_COPY_TARGET_INIT);
  for (uint32_t i = 0; i < count; ++i) {
    targets[i].index = i;
    targets[i].dst = reinterpret_cast<void *>(dst + offsets[i]);
    targets[i].dst_bytes = bytes[i];
    targets[i].device = 0;
  }
  shared->reader_ordinal = ordinal;
  __atomic_store_n(&shared->reader_ready, 1, __ATOMIC_RELEASE);
  uint64_t last = 0;
  while (last < o.versions) {
    uint64_t v;
    WB(wb_topic_wait(topic, last, 60000, &v));
    wb_snapshot *snap;
    WB(wb_snapshot_acquire(topic, 0, 60000, &snap));
    WB(wb_snapshot_version(snap, &v));
    if (v <= last) die("version %llu after %llu", (unsigned long long)v, (unsigned long long)last);
    __atomic_store_n(&shared->acquired, v, __ATOMIC_RELEASE);
    const void *meta;
    uint32_t meta_size;
    WB(wb_snapshot_metadata(snap, &meta, &meta_size, nullptr));
    if (meta_size != 8 || memcmp(meta, &v, 8) != 0) {
      die("version %llu carries another version's metadata", (unsigned long long)v);
    }
    if (v % 2) {
      WB(wb_snapshot_copy_into(snap, targets.data(), count, stream));
      CU(cu.cuMemcpyDtoHAsync(host, dst, total, stream));
      ++shared->copy_reads;
    } else {
      WB(wb_snapshot_wait_stream(snap, stream));
      for (uint32_t i = 0; i < count; ++i) {
        wb_tensor_info info = WB_TENSOR_INFO_INIT;
        WB(wb_snapshot_tensor_at(snap, i, &info));
        CU(cu.cuMemcpyDtoHAsync(static_cast<char *>(host) + offsets[i], reinterpret_cast<CUdeviceptr>(info.data),
                                bytes[i], stream));
      }
      ++shared->direct_reads;
    }
    CU(cu.cuStreamSynchronize(stream));  // the reads are done before the lease goes
    WB(wb_snapshot_release(snap));
    for (uint32_t i = 0; i < count; ++i) {
      const uint16_t *p = reinterpret_cast<const uint16_t *>(static_cast<char *>(host) + offsets[i]);
      uint16_t want = pattern(v, i);
      uint64_t wrong = 0;
      for (uint64_t k = 0; k < bytes[i] / 2; ++k) wrong += p[k] != want;
      if (wrong > 0 && shared->torn++ < 5) {
        fprintf(stderr, "TORN: version %llu tensor %u: %llu elements are not %#x\n", (unsigned long long)v, i,
                (unsigned long long)wrong, want);
      }
    }
    last = v;
    ++shared->versions_read;
    __atomic_store_n(&shared->last_version, v, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&shared->reader_done, 1, __ATOMIC_RELEASE);
  WB(wb_topic_close(topic));
  WB(wb_detach(client));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  skip_without_gpu();
  Model m = make_model(o.tensors, o.mib << 20);
  auto *shared = static_cast<Shared *>(shared_memory(sizeof(Shared)));
  Broker broker;
  std::string name = "exchange-" + o.path + "-r" + std::to_string(o.replicas) +
                     (o.publisher_devices || o.reader_devices ? "-visible" : "");
  printf("%s: %u tensors, %.1f MiB bf16, %u replica(s), %u versions; CUDA_VISIBLE_DEVICES publisher=%s reader=%s\n",
         name.c_str(), o.tensors, double(m.bytes) / (1 << 20), o.replicas, o.versions,
         o.publisher_devices ? o.publisher_devices : "(unset)", o.reader_devices ? o.reader_devices : "(unset)");
  double start = now_s();
  pid_t pub = spawn([&] { return publisher(o, m, broker.socket(), shared); });
  pid_t rd = spawn([&] { return reader(o, broker.socket(), shared); });
  int reader_status = wait_child(rd, 540);
  __atomic_store_n(&shared->reader_done, 1, __ATOMIC_RELEASE);
  int publisher_status = wait_child(pub, 60);
  double seconds = now_s() - start;
  bool ok = publisher_status == 0 && reader_status == 0 && shared->torn == 0 && shared->last_version == o.versions;
  result(name.c_str(),
         "%s versions=%u read=%llu (copy_into %llu, in place %llu) torn=%llu reader_sees_gpu_as=%lld seconds=%.1f",
         ok ? "PASS" : "FAIL", o.versions, (unsigned long long)shared->versions_read,
         (unsigned long long)shared->copy_reads, (unsigned long long)shared->direct_reads,
         (unsigned long long)shared->torn, (long long)shared->reader_ordinal, seconds);
  return ok ? 0 : 1;
}
