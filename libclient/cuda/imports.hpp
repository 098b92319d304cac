// Import once: each process opens each CUDA allocation on first use and keeps it open for every later
// version, keyed by allocation slot and generation. The exporting process uses its own pointer (a legacy
// handle cannot be opened by its exporter). Every open is counted by the broker in the allocation's importers
// and paired with its close: when the allocation is revoked or dead and no snapshot pins it (sweep), or at
// detach.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "layout.hpp"

namespace wb {
class Connection;
}

namespace wb::cuda {

// Whether a snapshot of this client reads the topic in registry slot topic_slot (its imports stay open while one
// does), asked of the client that owns the imports (client_state.cpp).
struct PinCheck {
  bool (*pinned)(void *context, uint32_t topic_slot) = nullptr;
  void *context = nullptr;
};

class Imports {
 public:
  Imports(Connection &connection, const shm::Segment &seg, const PinCheck &pins)
      : connection_(connection), seg_(seg), pins_(pins) {}
  Imports(const Imports &) = delete;
  Imports &operator=(const Imports &) = delete;
  // Closes every import. The broker stops counting them when the client's socket closes.
  ~Imports();

  // The device address in this process of the allocation in registry slot `slot`. WB_E_STALE when it is revoked
  // or dead.
  int base(uint32_t slot, char **out);

  // Closes imports of allocations that are no longer live and that no snapshot of this client pins. Returns
  // after one load when no allocation changed state since the last sweep left nothing pinned behind.
  void sweep();

  // The allocations open now. Safe to call while another thread holds the imports (it may be importing,
  // through a request that resumes the client).
  std::vector<uint32_t> open_allocations();

 private:
  struct Import {
    uint32_t generation = 0;
    uint32_t topic = 0;
    CUdeviceptr base = 0;
    uint64_t size = 0;
    CUcontext context = nullptr;
    bool vmm = false;
    std::vector<uint64_t> chunks;  // VMM: sizes of the chunks mapped back to back from base
  };
  int open(uint32_t slot, const shm::Allocation &a, Import *imp);
  int open_legacy(uint32_t slot, const shm::Allocation &a, Import *imp);
  int open_vmm(uint32_t slot, const shm::Allocation &a, int ordinal, Import *imp);
  void unmap(const Import &imp);
  void release(uint32_t slot);
  void note_open(uint32_t slot, bool open);  // keeps open_ and open_count_ in step with imports_

  Connection &connection_;  // imports and releases allocations
  const shm::Segment &seg_;
  PinCheck pins_;
  std::mutex mutex_;
  std::unordered_map<uint32_t, Import> imports_;
  // Under mutex_: the header's allocation_changes when the last sweep read the states, and whether that sweep
  // kept an import of a dead allocation that a snapshot pinned (it must be looked at again once unpinned).
  uint64_t swept_changes_ = UINT64_MAX;
  bool pinned_left_ = false;
  std::mutex open_mutex_;  // guards open_, the keys of imports_, on their own (see open_allocations)
  std::set<uint32_t> open_;
  std::atomic<uint32_t> open_count_{0};  // lets sweep return at once when nothing is imported
};

}  // namespace wb::cuda
