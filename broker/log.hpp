// One line per event: on stderr (or the daemon's log file), prefixed with time and level; or, under systemd,
// into the journal (sd_journal_send), with the level as the line's priority (error: err, warn: warning, info,
// debug). Lines have no length limit.
#pragma once

#include "log_limit.hpp"

namespace wb::broker {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_log_level(LogLevel level);
// Whether fd is the stream journal_stream names: $JOURNAL_STREAM, "DEVICE:INODE" of the stream systemd connects
// a service's stderr to in the journal (systemd.exec(5)). False for NULL, text of another form, or another file
// (a service whose stderr was redirected, a child that inherited the variable).
bool stream_is_journal(const char *journal_stream, int fd);
// Sends the lines to the journal from now on when stderr is the journal's stream; returns whether it does.
bool log_to_journal_if_stderr_is_it();
bool parse_log_level(const char *text, LogLevel *out);
[[gnu::format(printf, 2, 3)]] void log(LogLevel level, const char *fmt, ...);
// log() through limiter: at most LogLimiter::kLinesPerSecond lines a second, then one line saying how many
// were suppressed when it writes again. Lines below the log level count for nothing.
[[gnu::format(printf, 3, 4)]] void log_limited(LogLimiter *limiter, LogLevel level, const char *fmt, ...);

}  // namespace wb::broker

// log() for a line a client can make the broker repeat: rate-limited per call site (the broker logs from its
// one event-loop thread, so the site's limiter needs no lock).
#define WB_LOG_LIMITED(level, ...)                                   \
  do {                                                               \
    static ::wb::broker::LogLimiter wb_site_limiter;                 \
    ::wb::broker::log_limited(&wb_site_limiter, level, __VA_ARGS__); \
  } while (0)

namespace wb::broker {

}  // namespace wb::broker
