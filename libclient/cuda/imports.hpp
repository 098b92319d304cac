// Import once: each process opens each CUDA allocation on first use and keeps it open for every later
// version, keyed by allocation index and generation. The exporting process uses its own pointer (a legacy
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

struct wb_client;

namespace wb::cuda {

class Imports {
 public:
  explicit Imports(wb_client *client) : client_(client) {}
  Imports(const Imports &) = delete;
  Imports &operator=(const Imports &) = delete;
  // Closes every import. The broker stops counting them when the client's socket closes.
  ~Imports();

  // The device address of allocation `index` in this process. WB_E_STALE when it is revoked or dead.
  int base(uint32_t index, char **out);

  // Closes imports of allocations that are no longer live and that no snapshot of this client pins.
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
  int open(uint32_t index, const shm::Allocation &a, Import *imp);
  int open_legacy(uint32_t index, const shm::Allocation &a, Import *imp);
  int open_vmm(uint32_t index, const shm::Allocation &a, int ordinal, Import *imp);
  void unmap(const Import &imp);
  void release(uint32_t index);
  void note_open(uint32_t index, bool open);  // keeps open_ and open_count_ in step with imports_

  wb_client *client_;
  std::mutex mutex_;
  std::unordered_map<uint32_t, Import> imports_;
  std::mutex open_mutex_;  // guards open_, the keys of imports_, on their own (see open_allocations)
  std::set<uint32_t> open_;
  std::atomic<uint32_t> open_count_{0};  // lets sweep return at once when nothing is imported
};

}  // namespace wb::cuda
