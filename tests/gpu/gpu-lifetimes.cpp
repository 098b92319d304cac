// Lifetimes of CUDA allocations, and what registration refuses.
//
// 1. Refusals: managed memory, memory-pool memory, host memory (pageable and pinned), a tensor running past
//    its block, an existing name, revoking a host tensor: each a specific error with a message.
// 2. Revocation: while a reader holds a snapshot that maps the allocation, wb_tensor_revoke times out and the
//    reader's lookups turn WB_E_STALE at once; once the reader released it and sleeps in wb_topic_wait (no
//    further call), revoke completes: the blocked reader dropped its mapping by itself.
// 3. Exporter death: a killed legacy-IPC exporter's tensors turn WB_E_STALE for readers; a killed
//    wb_tensor_alloc_cuda exporter's tensors stay readable, even by a reader that starts after its death.
// 4. Removal of a topic of CUDA memory (wb_topic_remove): refused (WB_E_BUSY) while its publisher holds it and
//    while a reader's lease pins its version; once both let go it succeeds, the broker drops the VMM chunks it
//    kept, the reader's old handle finds nothing (WB_E_NOT_FOUND), and a topic of the same name is made anew.
// 5. A publisher killed before its stream reached a version's GPU word (its stream blocked on a flag nobody
//    sets): a reader whose stream waits for that version (wb_snapshot_wait_stream) is not left waiting for
//    ever: the broker writes the dead publisher's words, and the reader's stream goes on. Before the kill,
//    wb_snapshot_synchronize times out (WB_E_TIMEOUT); after it, it returns.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common.hpp"

using namespace gpu;

namespace {

struct Shared {
  uint64_t published;
  uint64_t holding;
  uint64_t revoke_timed_out;
  uint64_t released;
  uint64_t revoke_us;
  uint64_t stale_while_held;
  uint64_t stale_after;
  uint64_t legacy_read;
  uint64_t legacy_stale;
  uint64_t vmm_intact;
  uint64_t removal_closed;
  uint64_t removal_done;
  uint64_t stalled_waiting;
};

constexpr uint64_t kMiB = 1 << 20;

wb_tensor_spec spec(const char *name, uint64_t bytes) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_BF16;
  s.ndim = 1;
  s.shape[0] = int64_t(bytes / 2);
  return s;
}

void expect_message(const char *what, const char *needle) {
  if (strstr(wb_last_error(), needle) == nullptr) {
    die("%s: the message '%s' does not mention '%s'", what, wb_last_error(), needle);
  }
}

int refusals(const std::string &socket) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "refusals");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  wb_topic *topic;
  WB(wb_topic_create(client, "refusals", &opts, &topic));
  wb_tensor_spec s = spec("t", kMiB);
  CUdeviceptr managed, pooled, block;
  CU(cu.cuMemAllocManaged(&managed, kMiB, CU_MEM_ATTACH_GLOBAL));
  void *p = reinterpret_cast<void *>(managed);
  WB_EXPECT(wb_tensor_register_cuda(topic, &s, &p, 1), WB_E_INVAL);
  expect_message("managed memory", "managed");
  CU(cu.cuMemAllocAsync(&pooled, kMiB, stream));
  CU(cu.cuStreamSynchronize(stream));
  p = reinterpret_cast<void *>(pooled);
  WB_EXPECT(wb_tensor_register_cuda(topic, &s, &p, 1), WB_E_INVAL);
  expect_message("pool memory", "pool");
  std::vector<char> pageable(kMiB);
  p = pageable.data();
  WB_EXPECT(wb_tensor_register_cuda(topic, &s, &p, 1), WB_E_INVAL);
  CU(cu.cuMemAllocHost(&p, kMiB));
  WB_EXPECT(wb_tensor_register_cuda(topic, &s, &p, 1), WB_E_INVAL);
  expect_message("pinned host memory", "host memory");
  CU(cu.cuMemAlloc(&block, kMiB));
  wb_tensor_spec big = spec("big", 2 * kMiB);
  p = reinterpret_cast<void *>(block);
  WB_EXPECT(wb_tensor_register_cuda(topic, &big, &p, 1), WB_E_INVAL);
  expect_message("overrun", "past the end");
  WB(wb_tensor_register_cuda(topic, &s, &p, 1));
  WB_EXPECT(wb_tensor_register_cuda(topic, &s, &p, 1), WB_E_EXISTS);
  WB_EXPECT(wb_tensor_alloc_cuda(topic, &s, 1, 99), WB_E_INVAL);
  wb_tensor_spec host = spec("host", 4096);
  WB(wb_tensor_alloc(topic, &host, 1));
  WB_EXPECT(wb_tensor_revoke(topic, "host", 0), WB_E_INVAL);
  WB_EXPECT(wb_tensor_revoke(topic, "absent", 0), WB_E_NOT_FOUND);
  WB(wb_detach(client));
  return 0;
}

// A legacy block holding tensors w0 and w1 (one allocation), both filled with pattern(1, i) and published.
wb_topic *publish_legacy(wb_client *client, const char *name, CUstream stream) {
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  wb_topic *topic;
  WB(wb_topic_create(client, name, &opts, &topic));
  CUdeviceptr block;
  CU(cu.cuMemAlloc(&block, 4 * kMiB));
  wb_tensor_spec specs[2] = {spec("w0", kMiB), spec("w1", kMiB)};
  void *pointers[2] = {reinterpret_cast<void *>(block), reinterpret_cast<void *>(block + 2 * kMiB)};
  WB(wb_tensor_register_cuda(topic, specs, pointers, 2));
  wb_update *update;
  WB(wb_update_begin(topic, 5000, &update));
  for (uint32_t i = 0; i < 2; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_update_tensor_at(update, i, &info));
    CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(1, i), kMiB / 2, stream));
  }
  WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
  CU(cu.cuStreamSynchronize(stream));
  return topic;
}

// Reads tensor i of the snapshot into host memory and checks pattern(v, i). WB_OK or the lookup's error.
int read_tensor(wb_snapshot *snap, const char *name, uint32_t i, uint64_t v) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_snapshot_tensor(snap, name, &info);
  if (rc != WB_OK) return rc;
  WB(wb_snapshot_synchronize(snap, 10000));
  std::vector<uint16_t> host(info.nbytes / 2);
  CU(cu.cuMemcpyDtoH(host.data(), reinterpret_cast<CUdeviceptr>(info.data), info.nbytes));
  for (uint16_t x : host) {
    if (x != pattern(v, i)) die("%s reads %#x, expected %#x", name, x, pattern(v, i));
  }
  return WB_OK;
}

int revoke_publisher(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "revoke-publisher");
  wb_topic *topic = publish_legacy(client, "revoke", stream);
  __atomic_store_n(&sh->published, 1, __ATOMIC_RELEASE);
  if (!await(&sh->holding, 1, 60)) die("the reader did not lease");
  WB_EXPECT(wb_tensor_revoke(topic, "w0", 300), WB_E_TIMEOUT);
  __atomic_store_n(&sh->revoke_timed_out, 1, __ATOMIC_RELEASE);
  if (!await(&sh->released, 1, 60)) die("the reader did not release");
  int64_t start = now_ns();
  WB(wb_tensor_revoke(topic, "w0", 10000));
  sh->revoke_us = uint64_t(now_ns() - start) / 1000;
  wb_update *update;
  WB(wb_update_begin(topic, 5000, &update));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  WB_EXPECT(wb_update_tensor(update, "w1", &info), WB_E_STALE);
  WB(wb_update_publish(update, nullptr, 0, nullptr));  // wakes the reader
  if (!await(&sh->stale_after, 1, 60)) die("the reader did not finish");
  WB(wb_detach(client));
  return 0;
}

int revoke_reader(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  if (!await(&sh->published, 1, 60)) die("nothing published");
  wb_client *client = attach(socket, "revoke-reader");
  wb_topic *topic = open_topic(client, "revoke", 10000);
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(topic, 1, 5000, &snap));
  WB(read_tensor(snap, "w0", 0, 1));
  __atomic_store_n(&sh->holding, 1, __ATOMIC_RELEASE);
  if (!await(&sh->revoke_timed_out, 1, 60)) die("the publisher did not revoke");
  WB_EXPECT(read_tensor(snap, "w1", 1, 1), WB_E_STALE);  // the whole allocation, even under a lease
  sh->stale_while_held = 1;
  WB(wb_snapshot_release(snap));
  __atomic_store_n(&sh->released, 1, __ATOMIC_RELEASE);
  uint64_t v;
  WB(wb_topic_wait(topic, 1, 20000, &v));  // revoke completes while we sleep here
  WB(wb_snapshot_acquire(topic, 0, 5000, &snap));
  WB_EXPECT(read_tensor(snap, "w0", 0, v), WB_E_STALE);
  wb_copy_target target = WB_COPY_TARGET_INIT;
  CUdeviceptr dst;
  CU(cu.cuMemAlloc(&dst, kMiB));
  target.name = "w1";
  target.dst = reinterpret_cast<void *>(dst);
  target.dst_bytes = kMiB;
  target.device = 0;
  WB_EXPECT(wb_snapshot_copy_into(snap, &target, 1, nullptr), WB_E_STALE);
  WB(wb_snapshot_release(snap));
  __atomic_store_n(&sh->stale_after, 1, __ATOMIC_RELEASE);
  WB(wb_detach(client));
  return 0;
}

// Publishes and then waits to be killed.
int doomed_publisher(const std::string &socket, Shared *sh, bool legacy) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "doomed");
  if (legacy) {
    publish_legacy(client, "legacy-death", stream);
  } else {
    wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;  // R = 2
    wb_topic *topic;
    WB(wb_topic_create(client, "vmm-death", &opts, &topic));
    wb_tensor_spec specs[2] = {spec("w0", kMiB), spec("w1", 3 * kMiB)};
    WB(wb_tensor_alloc_cuda(topic, specs, 2, 0));
    wb_update *update;
    WB(wb_update_begin(topic, 5000, &update));
    for (uint32_t i = 0; i < 2; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      WB(wb_update_tensor_at(update, i, &info));
      CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(1, i), info.nbytes / 2, stream));
    }
    WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
    CU(cu.cuStreamSynchronize(stream));
  }
  __atomic_store_n(&sh->published, 1, __ATOMIC_RELEASE);
  pause();
  return 0;
}

int legacy_death_reader(const std::string &socket, Shared *sh, pid_t exporter) {
  init_cuda(nullptr);
  wb_client *client = attach(socket, "legacy-death-reader");
  wb_topic *topic = open_topic(client, "legacy-death", 10000);
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(topic, 1, 5000, &snap));
  WB(read_tensor(snap, "w1", 1, 1));
  WB(wb_snapshot_release(snap));
  sh->legacy_read = 1;
  kill(exporter, SIGKILL);
  // Lookups only: what a dead exporter's memory reads meanwhile is not defined.
  for (int64_t until = now_ns() + 5000000000; now_ns() < until; usleep(1000)) {
    WB(wb_snapshot_acquire(topic, 1, 5000, &snap));
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    int rc = wb_snapshot_tensor(snap, "w1", &info);
    WB(wb_snapshot_release(snap));
    if (rc == WB_E_STALE) {
      expect_message("legacy exporter death", "exporter");
      sh->legacy_stale = 1;
      break;
    }
    WB(rc);
  }
  WB(wb_detach(client));
  return sh->legacy_stale ? 0 : 1;
}

int vmm_late_reader(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  wb_client *client = attach(socket, "vmm-late-reader");
  wb_topic *topic = open_topic(client, "vmm-death", 10000);
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(topic, 1, 5000, &snap));
  WB(read_tensor(snap, "w0", 0, 1));
  WB(read_tensor(snap, "w1", 1, 1));
  WB(wb_snapshot_release(snap));
  sh->vmm_intact = 1;
  WB(wb_detach(client));
  return 0;
}

// Publishes a VMM tensor, then lets go of the topic once the reader holds the version.
int removal_publisher(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "removal-publisher");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  wb_topic *topic;
  WB(wb_topic_create(client, "removal", &opts, &topic));
  wb_tensor_spec s = spec("w0", 2 * kMiB);
  WB(wb_tensor_alloc_cuda(topic, &s, 1, 0));
  wb_update *update;
  WB(wb_update_begin(topic, 5000, &update));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  WB(wb_update_tensor_at(update, 0, &info));
  CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(1, 0), info.nbytes / 2, stream));
  WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
  CU(cu.cuStreamSynchronize(stream));
  __atomic_store_n(&sh->published, 1, __ATOMIC_RELEASE);
  if (!await(&sh->holding, 1, 60)) die("the reader did not lease");
  WB_EXPECT(wb_topic_remove(client, "removal"), WB_E_BUSY);  // we publish it
  expect_message("removal under its publisher", "publisher");
  WB(wb_topic_close(topic));
  __atomic_store_n(&sh->removal_closed, 1, __ATOMIC_RELEASE);
  if (!await(&sh->removal_done, 1, 60)) die("the reader did not remove the topic");
  WB(wb_detach(client));
  return 0;
}

int removal_reader(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  if (!await(&sh->published, 1, 60)) die("nothing published");
  wb_client *client = attach(socket, "removal-reader");
  wb_topic *topic = open_topic(client, "removal", 10000);
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(topic, 1, 5000, &snap));
  WB(read_tensor(snap, "w0", 0, 1));
  __atomic_store_n(&sh->holding, 1, __ATOMIC_RELEASE);
  if (!await(&sh->removal_closed, 1, 60)) die("the publisher did not close the topic");
  WB_EXPECT(wb_topic_remove(client, "removal"), WB_E_BUSY);  // our lease pins version 1
  WB(wb_snapshot_release(snap));
  WB(wb_topic_remove(client, "removal"));
  WB_EXPECT(wb_snapshot_acquire(topic, 0, 1000, &snap), WB_E_NOT_FOUND);
  WB_EXPECT(wb_topic_remove(client, "removal"), WB_E_NOT_FOUND);
  __atomic_store_n(&sh->removal_done, 1, __ATOMIC_RELEASE);
  // The name is free again, and the new topic's CUDA memory works.
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 1;
  wb_topic *again;
  WB(wb_topic_create(client, "removal", &opts, &again));
  wb_tensor_spec s = spec("w0", kMiB);
  WB(wb_tensor_alloc_cuda(again, &s, 1, 0));
  wb_update *update;
  WB(wb_update_begin(again, 5000, &update));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  WB(wb_update_tensor_at(update, 0, &info));
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(2, 0), info.nbytes / 2, stream));
  WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
  WB(wb_snapshot_acquire(again, 0, 5000, &snap));
  WB(read_tensor(snap, "w0", 0, 2));
  WB(wb_snapshot_release(snap));
  WB(wb_detach(client));
  return 0;
}

// Publishes version 1, then version 2 on a stream blocked behind a flag that is never set, and waits to be
// killed: version 2's GPU word is never written by its stream.
int stalled_publisher(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  wb_client *client = attach(socket, "stalled");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;  // R = 2
  wb_topic *topic;
  WB(wb_topic_create(client, "stalled", &opts, &topic));
  wb_tensor_spec s = spec("w0", kMiB);
  WB(wb_tensor_alloc_cuda(topic, &s, 1, 0));
  uint32_t *flag;
  CU(cu.cuMemAllocHost(reinterpret_cast<void **>(&flag), sizeof(uint32_t)));
  *flag = 0;
  for (uint64_t v = 1; v <= 2; ++v) {
    wb_update *update;
    WB(wb_update_begin(topic, 5000, &update));
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_update_tensor_at(update, 0, &info));
    if (v == 2) CU(cu.cuStreamWaitValue32(stream, reinterpret_cast<CUdeviceptr>(flag), 1, CU_STREAM_WAIT_VALUE_GEQ));
    CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(v, 0), info.nbytes / 2, stream));
    WB(wb_update_publish_on_stream(update, stream, nullptr, 0, nullptr));
    if (v == 1) CU(cu.cuStreamSynchronize(stream));
  }
  __atomic_store_n(&sh->published, 2, __ATOMIC_RELEASE);
  pause();
  return 0;
}

int stalled_reader(const std::string &socket, Shared *sh) {
  init_cuda(nullptr);
  CUstream stream;
  CU(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  if (!await(&sh->published, 2, 60)) die("the stalled publisher did not publish");
  wb_client *client = attach(socket, "stalled-reader");
  wb_topic *topic = open_topic(client, "stalled", 10000);
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(topic, 2, 5000, &snap));
  WB_EXPECT(wb_snapshot_synchronize(snap, 100), WB_E_TIMEOUT);
  WB(wb_snapshot_wait_stream(snap, stream));
  if (cu.cuStreamQuery(stream) != CUDA_ERROR_NOT_READY) die("the reader's stream did not wait for version 2");
  __atomic_store_n(&sh->stalled_waiting, 1, __ATOMIC_RELEASE);
  int64_t until = now_ns() + 20000000000;  // the publisher is killed now; the broker settles its words
  while (cu.cuStreamQuery(stream) == CUDA_ERROR_NOT_READY) {
    if (now_ns() > until) die("the reader's stream still waits 20 s after its publisher's death");
    usleep(1000);
  }
  CU(cu.cuStreamSynchronize(stream));
  WB(wb_snapshot_synchronize(snap, 5000));
  WB(wb_snapshot_release(snap));
  WB(wb_detach(client));
  return 0;
}

}  // namespace

int main() {
  skip_without_gpu();
  auto *sh = static_cast<Shared *>(shared_memory(sizeof(Shared)));
  Broker broker;
  const std::string &socket = broker.socket();
  Checks check(54);

  check("refusals", wait_child(spawn([&] { return refusals(socket); }), 60));

  pid_t pub = spawn([&] { return revoke_publisher(socket, sh); });
  pid_t rd = spawn([&] { return revoke_reader(socket, sh); });
  check("revoke: reader", wait_child(rd, 120));
  check("revoke: publisher", wait_child(pub, 60));
  uint64_t revoke_us = sh->revoke_us;

  memset(sh, 0, sizeof(*sh));
  pid_t doomed = spawn([&] { return doomed_publisher(socket, sh, true); });
  if (!await(&sh->published, 1, 60)) die("the legacy exporter did not publish");
  check("legacy exporter killed: readers get STALE",
        wait_child(spawn([&] { return legacy_death_reader(socket, sh, doomed); }), 60));
  wait_child(doomed, 10);

  memset(sh, 0, sizeof(*sh));
  doomed = spawn([&] { return doomed_publisher(socket, sh, false); });
  if (!await(&sh->published, 1, 60)) die("the VMM exporter did not publish");
  kill(doomed, SIGKILL);
  wait_child(doomed, 10);
  check("VMM exporter killed: a later reader reads",
        wait_child(spawn([&] { return vmm_late_reader(socket, sh); }), 60));

  memset(sh, 0, sizeof(*sh));
  pub = spawn([&] { return removal_publisher(socket, sh); });
  rd = spawn([&] { return removal_reader(socket, sh); });
  check("removal: reader", wait_child(rd, 60));
  check("removal: publisher", wait_child(pub, 60));

  memset(sh, 0, sizeof(*sh));
  pid_t stalled = spawn([&] { return stalled_publisher(socket, sh); });
  rd = spawn([&] { return stalled_reader(socket, sh); });
  if (await(&sh->stalled_waiting, 1, 60)) kill(stalled, SIGKILL);
  check("publisher killed before its GPU word: reader goes on", wait_child(rd, 60));
  kill(stalled, SIGKILL);
  wait_child(stalled, 10);

  result("lifetimes", "%s checks_failed=%d revoke_after_release_ms=%.1f", check.verdict(), check.failures(),
         double(revoke_us) / 1000.0);
  return check.failures() == 0 ? 0 : 1;
}
