// Each process maps each allocation once and keeps the mapping: versions never re-open handles.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace wb {

class Connection;

class AllocationCache {
 public:
  explicit AllocationCache(Connection &connection) : connection_(connection) {}
  AllocationCache(const AllocationCache &) = delete;
  AllocationCache &operator=(const AllocationCache &) = delete;
  ~AllocationCache();

  // Base address of the allocation in registry slot `slot` in this process, mapped writable or read-only. Asks
  // the broker for the descriptor on first use. WB_OK, or the call's error.
  int map(uint32_t slot, bool writable, char **base);

  // Maps a descriptor the broker just handed over (the caller closes it) and caches it writable.
  int adopt(uint32_t slot, int fd, uint64_t size);

  void unmap_all();

 private:
  struct Mapping {
    char *base = nullptr;  // nullptr: an attempt to map it failed (it is mapped on the next)
    uint64_t size = 0;
  };
  // The cached base of the allocation, or nullptr.
  char *cached(uint32_t slot, bool writable) const;
  int map_fd(uint32_t slot, int fd, uint64_t size, bool writable, char **base);

  Connection &connection_;  // asks the broker for descriptors
  std::mutex mutex_;
  std::unordered_map<uint64_t, Mapping> mappings_;  // key: slot << 1 | writable
};

}  // namespace wb
