// The broker's per-call-site log limiter (broker/log_limit.hpp), on its own with a given clock: a burst of
// LogLimiter::kLinesPerSecond lines is written, the rest of that second is counted, and the next line written
// says how many were held back.
#include <cstdint>
#include <vector>

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
}

#include "log_limit.hpp"

using wb::broker::LogLimiter;

namespace {

constexpr int64_t kMs = 1'000'000;

struct Line {
  int64_t at_ms;
  bool written;
  uint64_t suppressed;  // reported with it, when written
};

struct Case {
  const char *name;
  std::vector<Line> lines;
};

const Case kCases[] = {
    {"a burst of five is written, the rest of its second counted",
     {{0, true, 0}, {1, true, 0}, {2, true, 0}, {3, true, 0}, {4, true, 0}, {5, false, 0}, {999, false, 0},
      {1000, true, 2}, {1001, true, 0}}},
    {"lines spaced out are all written",
     {{0, true, 0}, {300, true, 0}, {600, true, 0}, {900, true, 0}, {1200, true, 0}, {1500, true, 0},
      {1800, true, 0}, {2100, true, 0}}},
    {"a flood writes five lines a second and one count each",
     {{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 0}, {500, false, 0},
      {1000, true, 2}, {1000, true, 0}, {1000, true, 0}, {1000, true, 0}, {1000, true, 0}, {1000, false, 0},
      {5000, true, 1}}},
    {"a clock that starts far from zero",
     {{-5000, true, 0}, {-5000, true, 0}, {-5000, true, 0}, {-5000, true, 0}, {-5000, true, 0},
      {-5000, false, 0}, {-3999, true, 1}}},
};

void every_case_writes_and_counts_as_listed(void **) {
  for (const Case &c : kCases) {
    LogLimiter limiter;
    for (size_t i = 0; i < c.lines.size(); ++i) {
      const Line &line = c.lines[i];
      uint64_t suppressed = UINT64_MAX;
      bool written = limiter.admit(line.at_ms * kMs, &suppressed);
      if (written != line.written || (written && suppressed != line.suppressed)) {
        fail_msg("%s: line %zu at %lld ms: written %d (expected %d), suppressed %llu (expected %llu)", c.name, i,
                 (long long)line.at_ms, written, line.written, (unsigned long long)suppressed,
                 (unsigned long long)line.suppressed);
      }
    }
  }
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {cmocka_unit_test(every_case_writes_and_counts_as_listed)};
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
