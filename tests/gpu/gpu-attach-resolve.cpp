// Attach + resolve 1,000 CUDA tensors, cold and warm (target: cold <= 50 ms, warm <= 1 ms on an H100).
//
//   gpu-attach-resolve [--tensors N]
//
// A publisher makes two topics of N bf16 tensors of 64 KiB: "owned" in one wb_tensor_alloc_cuda allocation,
// "registered" in N separate cuMemAlloc blocks (N legacy IPC handles to open). For each topic a fresh reader
// process, with its CUDA context already up (an inference server has one), measures
//   cold: wb_attach + wb_topic_open + wb_snapshot_acquire + wb_snapshot_tensor for every name (opening the
//         allocations) + release;
//   warm: acquire + every lookup + release again (allocations cached), median of 50.
#include <unistd.h>

#include <cstring>

#include "common.hpp"

using namespace gpu;

namespace {

struct Shared {
  uint64_t published;
  uint64_t done;
  double cold_ms[2];
  double warm_ms[2];
  double cuda_init_ms[2];
};

const char *kTopics[2] = {"owned", "registered"};

int publisher(const std::string &socket, const Model &m, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "resolve-publisher");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  uint32_t count = uint32_t(m.specs.size());
  for (int k = 0; k < 2; ++k) {
    wb_topic *topic;
    WB(wb_topic_create(client, kTopics[k], &opts, &topic));
    if (k == 0) {
      WB(wb_tensor_alloc_cuda(topic, m.specs.data(), count, 0));
    } else {
      std::vector<void *> pointers(count);
      for (uint32_t i = 0; i < count; ++i) {
        CUdeviceptr p;
        CU(cu.cuMemAlloc(&p, m.elements[i] * 2));
        pointers[i] = reinterpret_cast<void *>(p);
      }
      WB(wb_tensor_register_cuda(topic, m.specs.data(), pointers.data(), count));
    }
    wb_update *update;
    WB(wb_update_begin(topic, 5000, &update));
    for (uint32_t i = 0; i < count; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      WB(wb_update_tensor_at(update, i, &info));
      CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(1, i), m.elements[i], stream));
    }
    WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
  }
  CU(cu.cuStreamSynchronize(stream));
  __atomic_store_n(&sh->published, 1, __ATOMIC_RELEASE);
  if (!await(&sh->done, 1, 240)) die("the readers did not finish");
  WB(wb_detach(client));
  return 0;
}

// Acquires the latest version and looks every tensor up by name.
void resolve_all(wb_topic *topic, const Model &m, wb_snapshot **snap) {
  WB(wb_snapshot_acquire(topic, 0, 5000, snap));
  for (const std::string &name : m.names) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_snapshot_tensor(*snap, name.c_str(), &info));
    if (info.data == nullptr || info.device_type != WB_DEVICE_CUDA) {
      die("%s resolved to no device pointer", name.c_str());
    }
  }
}

int reader(const std::string &socket, const Model &m, int k, Shared *sh) {
  int64_t t0 = now_ns();
  init_cuda(nullptr);
  sh->cuda_init_ms[k] = double(now_ns() - t0) / 1e6;
  int64_t start = now_ns();
  wb_client *client = attach(socket, "resolve-reader");
  wb_topic *topic;
  WB(wb_topic_open(client, kTopics[k], &topic));
  wb_snapshot *snap;
  resolve_all(topic, m, &snap);
  WB(wb_snapshot_release(snap));
  sh->cold_ms[k] = double(now_ns() - start) / 1e6;
  std::vector<double> warm;
  for (int rep = 0; rep < 50; ++rep) {
    int64_t t = now_ns();
    resolve_all(topic, m, &snap);
    WB(wb_snapshot_release(snap));
    warm.push_back(double(now_ns() - t) / 1e6);
  }
  sh->warm_ms[k] = percentile(warm, 50);
  // The lookups must give working pointers: read the last tensor back.
  resolve_all(topic, m, &snap);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  uint32_t last = uint32_t(m.names.size() - 1);
  WB(wb_snapshot_tensor_at(snap, last, &info));
  WB(wb_snapshot_synchronize(snap, 10000));
  uint16_t first;
  CU(cu.cuMemcpyDtoH(&first, reinterpret_cast<CUdeviceptr>(info.data), 2));
  if (first != pattern(1, last)) die("tensor %u reads %#x, expected %#x", last, first, pattern(1, last));
  WB(wb_snapshot_release(snap));
  WB(wb_detach(client));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  uint32_t tensors = argc > 2 && strcmp(argv[1], "--tensors") == 0 ? uint32_t(atoi(argv[2])) : 1000;
  skip_without_gpu();
  Model m = make_model(tensors, uint64_t(tensors) * 64 * 1024);
  auto *sh = static_cast<Shared *>(shared_memory(sizeof(Shared)));
  // Registered tensors take one allocation each, all of one client.
  const std::string table = std::to_string(tensors + 16);
  Broker broker({"--max-allocations", table, "--max-allocations-per-client", table});
  pid_t pub = spawn([&] { return publisher(broker.socket(), m, sh); });
  if (!await(&sh->published, 1, 120)) die("the publisher did not publish");
  int status = 0;
  for (int k = 0; k < 2; ++k) status |= wait_child(spawn([&] { return reader(broker.socket(), m, k, sh); }), 120);
  __atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
  status |= wait_child(pub, 60);
  for (int k = 0; k < 2; ++k) {
    const char *allocations = k == 0 ? "1 VMM allocation" : "one legacy IPC allocation each";
    printf("%s: %u tensors in %s: cold %.2f ms, warm %.3f ms (CUDA context set-up before, not counted: %.0f ms)\n",
           kTopics[k], tensors, allocations, sh->cold_ms[k], sh->warm_ms[k], sh->cuda_init_ms[k]);
  }
  result("attach-resolve",
         "%s tensors=%u owned_cold_ms=%.2f owned_warm_ms=%.3f registered_cold_ms=%.2f "
         "registered_warm_ms=%.3f",
         status == 0 ? "PASS" : "FAIL", tensors, sh->cold_ms[0], sh->warm_ms[0], sh->cold_ms[1], sh->warm_ms[1]);
  return status == 0 ? 0 : 1;
}
