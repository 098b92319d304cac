// One line per event on stderr (or the daemon's log file), prefixed with time and level.
#pragma once

namespace wb::broker {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_log_level(LogLevel level);
bool parse_log_level(const char *text, LogLevel *out);
[[gnu::format(printf, 2, 3)]] void log(LogLevel level, const char *fmt, ...);

}  // namespace wb::broker
