// A test seam for the crash tests (crash simulation built in): $WB_TEST_CRASH_AT=POINT:N, read when a client
// attaches, makes the process kill itself with SIGKILL the Nth time it reaches POINT, so that a test can crash
// a publisher exactly where random kills rarely land. Unset, it costs one comparison.
#pragma once

#include <cstdint>

namespace wb {

enum class CrashPoint : uint32_t {
  kNone,
  kPublishAfterReplicas,  // "publish-after-replicas": replica versions stored, `latest` not yet
  kRankBeforePublished,   // "rank-before-published": a rank stored its shards' versions, not its published
  kRankAfterPublished,    // "rank-after-published": a rank stored its published, not yet committed nor told the broker
};

struct CrashSeam {
  CrashPoint point = CrashPoint::kNone;
  uint32_t countdown = 0;
};

// Parses $WB_TEST_CRASH_AT (unknown points are ignored).
CrashSeam crash_seam_from_env();

// SIGKILLs the process on the countdown's last pass through `here`.
void crash_point(CrashSeam &seam, CrashPoint here);

}  // namespace wb
