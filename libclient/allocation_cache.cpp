// Mapping each allocation once per process (allocation_cache.hpp).
#include "allocation_cache.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "connection.hpp"
#include "error.hpp"
#include "private_path.hpp"

namespace wb {

AllocationCache::~AllocationCache() { unmap_all(); }

void AllocationCache::unmap_all() {
  std::lock_guard lock(mutex_);
  for (auto &[key, mapping] : mappings_) {
    if (mapping.base != nullptr) munmap(mapping.base, mapping.size);
  }
  mappings_.clear();
}

char *AllocationCache::cached(uint32_t slot, bool writable) const {
  auto found = mappings_.find(uint64_t{slot} << 1 | writable);
  return found != mappings_.end() ? found->second.base : nullptr;
}

int AllocationCache::map_fd(uint32_t slot, int fd, uint64_t size, bool writable, char **base) {
  std::string what = "allocation " + std::to_string(slot) + " the broker sent";
  int rc = private_path::check_object(what.c_str(), fd, geteuid(), private_path::kReceivedObjectAdvice);
  if (rc != WB_OK) return rc;
  // The entry before the mapping: once the memory is mapped, recording it cannot fail.
  Mapping &entry = mappings_[uint64_t{slot} << 1 | writable];
  int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void *addr = mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return fail_errno("mmap of a tensor allocation");
  entry = Mapping{static_cast<char *>(addr), size};
  *base = entry.base;
  return WB_OK;
}

int AllocationCache::adopt(uint32_t slot, int fd, uint64_t size) {
  std::lock_guard lock(mutex_);
  char *base = cached(slot, true);
  return base != nullptr ? WB_OK : map_fd(slot, fd, size, true, &base);
}

int AllocationCache::map(uint32_t slot, bool writable, char **base) {
  std::lock_guard lock(mutex_);
  if ((*base = cached(slot, writable)) != nullptr) return WB_OK;
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateGetAllocation(builder, slot);
  Reply reply;
  int rc = connection_.call(builder, proto::Body::GetAllocation, body.Union(), &reply);
  if (rc != WB_OK) return rc;
  if (reply.fds.size() != 1) return fail(WB_E_PROTOCOL, "the broker answered GetAllocation without a descriptor");
  return map_fd(slot, reply.fds[0], reply.size, writable, base);
}

}  // namespace wb
