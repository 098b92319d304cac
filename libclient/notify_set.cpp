// Closing a notify fd's members (notify_set.hpp); keeping them up to date is notify.cpp's.
#include "notify_set.hpp"

#include <unistd.h>

namespace wb {

void NotifySet::reset() {
  watch.stop();
  for (int *fd : {&pipe, &timer, &epoll}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  outage = false;
}

}  // namespace wb
