#include "crash_point.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>

namespace wb {

namespace {

struct NamedPoint {
  const char *name;  // with its ':'
  CrashPoint point;
};

constexpr NamedPoint kPoints[] = {
    {"publish-after-replicas:", CrashPoint::kPublishAfterReplicas},
    {"rank-before-published:", CrashPoint::kRankBeforePublished},
    {"rank-after-published:", CrashPoint::kRankAfterPublished},
};

}  // namespace

CrashSeam crash_seam_from_env() {
  const char *spec = getenv("WB_TEST_CRASH_AT");
  if (spec == nullptr) return {};
  for (const NamedPoint &p : kPoints) {
    size_t length = strlen(p.name);
    if (strncmp(spec, p.name, length) == 0) return {p.point, uint32_t(strtoul(spec + length, nullptr, 10))};
  }
  return {};
}

void crash_point(CrashSeam &seam, CrashPoint here) {
  if (seam.point != here || seam.countdown == 0) return;
  if (--seam.countdown == 0) raise(SIGKILL);
}

}  // namespace wb
