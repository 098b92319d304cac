// CUDA VMM memory across a broker restart: its chunk fds die with the broker, but nothing is lost while the
// exporter lives.
//
// A publisher exports two topics of VMM memory (wb_tensor_alloc_cuda, and memory of its own registered with
// wb_tensor_register_cuda), publishes version 1, and a reader maps both. The broker is killed and restarted:
//   - the reader, resumed, still reads version 1 through the mappings it had;
//   - a new reader, before the publisher resumed, gets WB_E_STATE naming the wait (not WB_E_STALE);
//   - the publisher publishes version 2 (it resumes and exports its chunks again);
//   - the first reader and a new one both read version 2.
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "common.hpp"

using namespace gpu;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr const char *kTopics[2] = {"owned", "registered"};

struct Shared {
  uint64_t published;  // the version the publisher last published
  uint64_t restarted;  // set by the parent: the publisher may go on
  uint64_t read;       // the version the first reader last read
  uint64_t next;       // set by the parent: the first reader reads the next version
};

wb_tensor_spec spec(const char *name, uint64_t bytes) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_BF16;
  s.ndim = 1;
  s.shape[0] = int64_t(bytes / 2);
  return s;
}

// 8 MiB of back-to-back VMM chunks, exportable as POSIX fds, holding two tensors (R = 1).
std::vector<void *> own_vmm_memory() {
  uint64_t chunk, total;
  CUdeviceptr base = map_vmm_chunks(8 * kMiB, 1, &chunk, &total);
  return {reinterpret_cast<void *>(base), reinterpret_cast<void *>(base + 3 * kMiB)};
}

void publish(wb_topic *topic, uint64_t v, CUstream stream) {
  wb_update *update;
  WB(wb_update_begin(topic, 20000, &update));
  for (uint32_t i = 0; i < 2; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_update_tensor_at(update, i, &info));
    CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(v, i), info.nbytes / 2, stream));
  }
  uint64_t published;
  WB(wb_update_publish_on_stream(update, stream, nullptr, 0, &published));
  if (published != v) die("published version %llu, expected %llu", (unsigned long long)published,
                          (unsigned long long)v);
  CU(cu.cuStreamSynchronize(stream));
}

int publisher(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "publisher");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  wb_topic *owned, *registered;
  wb_tensor_spec specs[2] = {spec("w0", 2 * kMiB), spec("w1", 4 * kMiB)};
  WB(wb_topic_create(client, kTopics[0], &opts, &owned));
  WB(wb_tensor_alloc_cuda(owned, specs, 2, 0));
  WB(wb_topic_create(client, kTopics[1], &opts, &registered));
  std::vector<void *> pointers = own_vmm_memory();
  WB(wb_tensor_register_cuda(registered, specs, pointers.data(), 2));
  publish(owned, 1, stream);
  publish(registered, 1, stream);
  __atomic_store_n(&sh->published, 1, __ATOMIC_RELEASE);
  if (!await(&sh->restarted, 1, 60)) die("no restart");
  publish(owned, 2, stream);  // resumes with the new broker first
  publish(registered, 2, stream);
  __atomic_store_n(&sh->published, 2, __ATOMIC_RELEASE);
  pause();  // the memory lives while its exporter does
  return 0;
}

// Reads version v of both topics and checks every element. WB_OK, or the first lookup's error.
int read_version(wb_topic *const topics[2], uint64_t v) {
  for (int k = 0; k < 2; ++k) {
    wb_snapshot *snap;
    WB(wb_snapshot_acquire(topics[k], v, 10000, &snap));
    for (uint32_t i = 0; i < 2; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      int rc = wb_snapshot_tensor_at(snap, i, &info);
      if (rc != WB_OK) {
        std::string message = wb_last_error();
        WB(wb_snapshot_release(snap));
        fprintf(stderr, "%s\n", message.c_str());
        return rc;
      }
      WB(wb_snapshot_synchronize(snap, 10000));
      std::vector<uint16_t> host(info.nbytes / 2);
      CU(cu.cuMemcpyDtoH(host.data(), reinterpret_cast<CUdeviceptr>(info.data), info.nbytes));
      for (uint16_t x : host) {
        if (x != pattern(v, i)) die("%s/%s reads %#x, expected %#x", kTopics[k], info.name, x, pattern(v, i));
      }
    }
    WB(wb_snapshot_release(snap));
  }
  return WB_OK;
}

void open_both(wb_client *client, wb_topic *topics[2]) {
  for (int k = 0; k < 2; ++k) topics[k] = open_topic(client, kTopics[k], 20000);
}

// Reads version 1 before the restart and again after it, then version 2.
int first_reader(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  wb_client *client = attach(socket, "first reader");
  wb_topic *topics[2];
  open_both(client, topics);
  WB(read_version(topics, 1));
  __atomic_store_n(&sh->read, 1, __ATOMIC_RELEASE);
  if (!await(&sh->next, 1, 60)) die("no restart");
  WB(read_version(topics, 1));  // through the mappings made before the restart
  __atomic_store_n(&sh->read, 2, __ATOMIC_RELEASE);
  if (!await(&sh->published, 2, 60)) die("version 2 never came");
  WB(read_version(topics, 2));
  WB(wb_detach(client));
  return 0;
}

// A reader that starts after the restart, before the exporter resumed: told to wait, not that it is gone.
int early_new_reader(const std::string &socket) {
  init_cuda(nullptr);
  wb_client *client = attach(socket, "early reader");
  wb_topic *topics[2];
  open_both(client, topics);
  WB_EXPECT(read_version(topics, 1), WB_E_STATE);
  WB(wb_detach(client));
  return 0;
}

int late_new_reader(const std::string &socket) {
  init_cuda(nullptr);
  wb_client *client = attach(socket, "late reader");
  wb_topic *topics[2];
  open_both(client, topics);
  WB(read_version(topics, 2));
  WB(wb_detach(client));
  return 0;
}

}  // namespace

int main() {
  skip_without_gpu();
  auto *sh = static_cast<Shared *>(shared_memory(sizeof(Shared)));
  Broker broker;
  const std::string &socket = broker.socket();
  Checks check(58);
  pid_t pub = spawn([&] { return publisher(socket, sh); });
  if (!await(&sh->published, 1, 60)) die("the publisher did not publish");
  pid_t first = spawn([&] { return first_reader(socket, sh); });
  if (!await(&sh->read, 1, 60)) die("the first reader did not read");
  broker.kill_and_restart();
  __atomic_store_n(&sh->next, 1, __ATOMIC_RELEASE);
  if (!await(&sh->read, 2, 60)) die("the first reader did not read version 1 again");
  check("a new reader waits for the exporter to resume (WB_E_STATE)",
        wait_child(spawn([&] { return early_new_reader(socket); }), 60));
  __atomic_store_n(&sh->restarted, 1, __ATOMIC_RELEASE);
  if (!await(&sh->published, 2, 60)) die("the publisher did not publish after the restart");
  check("a new reader reads version 2", wait_child(spawn([&] { return late_new_reader(socket); }), 60));
  check("the first reader read 1, 1 again and 2 across the restart", wait_child(first, 60));
  kill(pub, SIGKILL);
  wait_child(pub, 10);
  result("broker-restart", "%s checks_failed=%d", check.verdict(), check.failures());
  return check.failures() == 0 ? 0 : 1;
}
