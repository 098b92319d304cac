#include "log.hpp"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

// The journal's fields are the broker's own: no CODE_FILE/CODE_LINE pointing into this file for every line.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace wb::broker {

namespace {
LogLevel threshold = LogLevel::kInfo;
bool to_journal = false;
const char *const kNames[] = {"error", "warn", "info", "debug"};
const int kPriorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
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

bool stream_is_journal(const char *journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  uintmax_t device = 0, inode = 0;
  int end = 0;
  if (sscanf(journal_stream, "%ju:%ju%n", &device, &inode, &end) != 2 || journal_stream[end] != '\0') return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  return uintmax_t(st.st_dev) == device && uintmax_t(st.st_ino) == inode;
}

bool log_to_journal_if_stderr_is_it() {
  to_journal = stream_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO);
  return to_journal;
}

namespace {

// The line, however long: the journal takes any length, and a file or a terminal gets it whole too.
std::string format(const char *fmt, va_list args) {
  va_list again;
  va_copy(again, args);
  const int n = vsnprintf(nullptr, 0, fmt, again);
  va_end(again);
  if (n <= 0) return {};
  std::string line(size_t(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), fmt, args);
  line.pop_back();
  return line;
}

void write_line(LogLevel level, const char *fmt, va_list args) {
  const std::string line = format(fmt, args);
  // The journal stamps the time; the line's priority is its level. Should sending fail, the line goes to stderr,
  // which systemd sends to the journal too (as plain text).
  if (to_journal && sd_journal_send("MESSAGE=%s", line.c_str(), "PRIORITY=%d", kPriorities[int(level)],
                                    "SYSLOG_IDENTIFIER=weightbusd", nullptr) == 0)
    return;
  char stamp[32];
  time_t now = time(nullptr);
  tm local;
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &local));
  fprintf(stderr, "%s weightbusd %s: %s\n", stamp, kNames[int(level)], line.c_str());
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
