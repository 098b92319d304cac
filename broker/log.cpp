#include "log.hpp"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace wb::broker {

namespace {
LogLevel threshold = LogLevel::kInfo;
const char *const kNames[] = {"error", "warn", "info", "debug"};
}  // namespace

void set_log_level(LogLevel level) { threshold = level; }

bool parse_log_level(const char *text, LogLevel *out) {
  for (int i = 0; i < 4; ++i) {
    if (strcmp(text, kNames[i]) == 0) {
      *out = LogLevel(i);
      return true;
    }
  }
  return false;
}

namespace {

void write_line(LogLevel level, const char *fmt, va_list args) {
  char stamp[32];
  time_t now = time(nullptr);
  tm local;
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &local));
  char line[1024];
  vsnprintf(line, sizeof(line), fmt, args);
  fprintf(stderr, "%s weightbusd %s: %s\n", stamp, kNames[int(level)], line);
}

int64_t monotonic_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

void log(LogLevel level, const char *fmt, ...) {
  if (level > threshold) return;
  va_list args;
  va_start(args, fmt);
  write_line(level, fmt, args);
  va_end(args);
}

void log_limited(LogLimiter *limiter, LogLevel level, const char *fmt, ...) {
  uint64_t suppressed = 0;
  if (level > threshold || !limiter->admit(monotonic_ns(), &suppressed)) return;
  if (suppressed > 0) log(level, "(%llu similar lines suppressed)", (unsigned long long)suppressed);
  va_list args;
  va_start(args, fmt);
  write_line(level, fmt, args);
  va_end(args);
}

}  // namespace wb::broker
