// Export and registration: the CUDA allocations this client exported, and the messages that register them
// and their tensors with the broker. An allocation is exported once per topic however many tensors it holds:
// later registrations find it again by address. Memory this client created itself (wb_tensor_alloc_cuda)
// is freed once revoked, or at detach; the broker's fds keep it alive for importers after that.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <list>
#include <mutex>
#include <vector>

#include "layout.hpp"

namespace wb {
class Connection;
struct TensorRequest;
}
struct wb_topic;

namespace wb::cuda {

struct Chunk {
  int fd;  // exported with CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
  uint64_t size;
};

struct NewAllocation {
  uint32_t topic = 0;
  shm::AllocationKind kind = shm::AllocationKind::kCudaIpc;
  uint64_t size = 0;
  uint8_t device_uuid[16] = {};
  uint8_t ipc_handle[64] = {};  // legacy
  CUdeviceptr base = 0;
  std::vector<Chunk> chunks;  // VMM, in address order
};

// Where one tensor's replicas live: an allocation and a byte offset per replica of the topic.
struct Placement {
  uint32_t spec = 0;  // index into the caller's requests
  uint32_t allocation[WB_MAX_REPLICAS] = {};
  uint64_t offset[WB_MAX_REPLICAS] = {};
};

// Memory this library creates on GPU `ordinal` (wb_tensor_alloc_cuda): one VMM allocation of at least size
// bytes (rounded up to the allocation granularity), shareable as a POSIX fd, mapped read-write in the GPU's
// primary context, zero-filled, and exported to *fd.
struct Owned {
  CUcontext context = nullptr;
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr base = 0;
  uint64_t size = 0;
};
int alloc_owned(int ordinal, uint64_t size, Owned *out, int *fd);
void free_owned(const Owned &owned);

struct Driver;
// Exports the VMM chunk mapped at base as a POSIX fd (its GPU's context current). WB_E_INVAL for memory
// created without that handle type.
int export_vmm_chunk(const Driver *d, CUdeviceptr base, int *fd);

class Exports {
 public:
  Exports(Connection &connection, const shm::Segment &seg) : connection_(connection), seg_(seg) {}
  Exports(const Exports &) = delete;
  Exports &operator=(const Exports &) = delete;
  ~Exports();

  // Registers a with the broker and remembers it. Its chunk fds are closed here whatever happens (the broker
  // keeps copies). owned: memory this client created (else a zero Owned), freed by forget() or at detach
  // once registered; the caller frees it when this fails.
  int add(NewAllocation &a, const Owned &owned, uint32_t *slot);

  // The live allocation of topic, exported by this client, that holds [begin, begin + bytes).
  bool find(uint32_t topic_slot, CUdeviceptr begin, uint64_t bytes, uint32_t *slot);

  // Forgets an allocation once revoked and unmapped by every importer, freeing it if this client owns it.
  void forget(uint32_t slot);

  // After a broker restart (connection.cpp's resume): sends the successor the chunks of each VMM allocation that
  // waits for them. One that cannot be exported again is revoked, so that readers get WB_E_STALE rather than wait.
  void export_again();

 private:
  struct Export {
    uint32_t slot = 0;
    uint32_t topic = 0;
    CUdeviceptr base = 0;
    uint64_t size = 0;
    std::vector<uint64_t> chunk_sizes;  // VMM: the chunks mapped back to back from base
    Owned owned;  // handle 0 for registered memory, which stays the caller's
  };
  int export_again(const Export &e);

  Connection &connection_;  // registers, sends and revokes allocations
  const shm::Segment &seg_;
  std::mutex mutex_;
  std::list<Export> exports_;  // a list: add() makes its node before the broker hears of the allocation
};

// Registers tensors placed in registered allocations (RegisterTensors messages, in batches).
int register_tensors(wb_topic *topic, const std::vector<TensorRequest> &requests,
                     const std::vector<Placement> &placements);

// Asks the broker to revoke an allocation; *importers receives how many processes still map it.
int revoke_allocation(Connection &connection, uint32_t slot, uint32_t *importers);

}  // namespace wb::cuda
