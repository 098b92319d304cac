#include "crash_point.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>

namespace wb {

CrashSeam crash_seam_from_env() {
  const char *spec = getenv("WB_TEST_CRASH_AT");
  constexpr const char kPublish[] = "publish-after-replicas:";
  if (spec == nullptr || strncmp(spec, kPublish, sizeof(kPublish) - 1) != 0) return {};
  return {CrashPoint::kPublishAfterReplicas, uint32_t(strtoul(spec + sizeof(kPublish) - 1, nullptr, 10))};
}

void crash_point(CrashSeam &seam, CrashPoint here) {
  if (seam.point != here || seam.countdown == 0) return;
  if (--seam.countdown == 0) raise(SIGKILL);
}

}  // namespace wb
