#include "process_id.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace wb {

namespace {

std::atomic<uint32_t> remembered{0};

void forget_in_child() noexcept { remembered.store(0, std::memory_order_relaxed); }

}  // namespace

uint32_t process_id() {
  uint32_t pid = remembered.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, forget_in_child); });
  pid = uint32_t(getpid());
  remembered.store(pid, std::memory_order_relaxed);
  return pid;
}

}  // namespace wb
