#include "descriptors.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::broker {

void Descriptors::start(uint64_t limit, uint64_t open_now, uint64_t clients) {
  started_ = true;
  limit_ = limit;
  held_ = open_now;
  clients_ = clients;
}

int Descriptors::check(uint64_t n, const char *what) const {
  uint64_t room_for_connections = clients_ > connections_ ? clients_ - connections_ : 0;
  if (!started_ || held_ + room_for_connections + n + kReserve <= limit_) return WB_OK;
  return fail(WB_E_NOSPC, "the broker's descriptors (RLIMIT_NOFILE %llu) are all in use: it holds %llu and keeps "
              "%llu in reserve and room for %llu more client connections (--max-clients), so %s is refused "
              "(close notify fds, topics or clients, or start weightbusd with a higher `ulimit -n`)",
              (unsigned long long)limit_, (unsigned long long)held_, (unsigned long long)kReserve,
              (unsigned long long)room_for_connections, what);
}

int Descriptors::check_connection() const {
  if (!started_ || held_ + 1 + kReserve <= limit_) return WB_OK;
  return fail(WB_E_NOSPC, "the broker's descriptors (RLIMIT_NOFILE %llu) are all in use: it holds %llu and keeps "
              "%llu in reserve, so this connection is refused (try again later, or start weightbusd with a higher "
              "`ulimit -n`)", (unsigned long long)limit_, (unsigned long long)held_, (unsigned long long)kReserve);
}

uint64_t raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : uint64_t(limit.rlim_cur);
}

uint64_t count_open_descriptors() {
  DIR *dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t count = 0;
  while (dirent *entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory's own descriptor
}

}  // namespace wb::broker
