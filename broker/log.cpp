#include "log.hpp"

#include <cstdarg>
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

void log(LogLevel level, const char *fmt, ...) {
  if (level > threshold) return;
  char stamp[32];
  time_t now = time(nullptr);
  tm local;
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &local));
  char line[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  fprintf(stderr, "%s weightbusd %s: %s\n", stamp, kNames[int(level)], line);
}

}  // namespace wb::broker
