#include "fail_nth_allocation.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

// Counting is armed for one thread, the one running the call: the test's helpers on other threads (none
// today) would otherwise shift the count.
thread_local bool armed = false;
thread_local uint64_t made = 0;
thread_local uint64_t fail_at = 0;

// Whether the allocation being made now is the one to fail.
bool this_one_fails() {
  if (!armed) return false;
  return ++made == fail_at;
}

void *allocate(std::size_t size, std::size_t alignment) {
  if (this_one_fails()) return nullptr;
  if (size == 0) size = 1;
  if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
  void *p = nullptr;
  return posix_memalign(&p, alignment, size) == 0 ? p : nullptr;
}

void *allocate_or_throw(std::size_t size, std::size_t alignment) {
  void *p = allocate(size, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

constexpr std::size_t kPlain = alignof(std::max_align_t);

}  // namespace

namespace wb::test {

void arm_allocation_failure(uint64_t n) {
  made = 0;
  fail_at = n;
  armed = true;
}

uint64_t disarm_allocation_failure() {
  armed = false;
  return made;
}

}  // namespace wb::test

void *operator new(std::size_t size) { return allocate_or_throw(size, kPlain); }
void *operator new[](std::size_t size) { return allocate_or_throw(size, kPlain); }
void *operator new(std::size_t size, std::align_val_t al) { return allocate_or_throw(size, std::size_t(al)); }
void *operator new[](std::size_t size, std::align_val_t al) { return allocate_or_throw(size, std::size_t(al)); }
void *operator new(std::size_t size, const std::nothrow_t &) noexcept { return allocate(size, kPlain); }
void *operator new[](std::size_t size, const std::nothrow_t &) noexcept { return allocate(size, kPlain); }
void *operator new(std::size_t size, std::align_val_t al, const std::nothrow_t &) noexcept {
  return allocate(size, std::size_t(al));
}
void *operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t &) noexcept {
  return allocate(size, std::size_t(al));
}

void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void *p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { std::free(p); }
