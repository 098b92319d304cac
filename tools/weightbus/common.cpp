#include "common.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <iterator>
#include <thread>

#include "json.hpp"

namespace wbcli {

// ----------------------------------------------------------------------------------------------- errors

Failure::Failure(const std::string &what, const weightbus::Error &cause_, std::string hint_)
    : std::runtime_error(what), cause(cause_), hint(std::move(hint_)) {}

int report_current_exception() {
  try {
    throw;
  } catch (const Failure &e) {
    const std::string code = wb_strerror(e.cause.code());
    const std::string &detail = e.cause.message();
    std::string line = std::string("weightbus: ") + e.what() + ": " + code;
    // Some messages only repeat the code's description ("...: the broker is gone: the broker is gone").
    if (!detail.empty() && !code.ends_with(": " + detail)) line += ": " + detail;
    err_line(line);
    if (!e.hint.empty()) err_line("weightbus: hint: " + e.hint);
  } catch (const std::exception &e) {
    err_line(std::string("weightbus: ") + e.what());
  }
  return 1;
}

// ----------------------------------------------------------------------------------------------- options

size_t Args::options_end() const {
  for (size_t k = 0; k < words_.size(); ++k)
    if (words_[k] == "--") return k;
  return words_.size();
}

bool Args::flag(std::string_view name, std::string_view alias) {
  bool found = false;
  for (size_t k = 0; k < options_end();) {
    if (words_[k] != name && (alias.empty() || words_[k] != alias)) {
      ++k;
      continue;
    }
    words_.erase(words_.begin() + static_cast<std::ptrdiff_t>(k));
    found = true;
  }
  return found;
}

std::optional<std::string> Args::value(std::string_view name) {
  const std::vector<std::string> all = values(name);
  if (all.empty()) return std::nullopt;
  return all.back();  // the last one given wins, as in most tools
}

std::vector<std::string> Args::values(std::string_view name) {
  const std::string inline_prefix = std::string(name) + "=";
  std::vector<std::string> result;
  for (size_t k = 0; k < options_end();) {
    const std::string &w = words_[k];
    auto at = words_.begin() + static_cast<std::ptrdiff_t>(k);
    if (w.starts_with(inline_prefix)) {
      result.push_back(w.substr(inline_prefix.size()));
      words_.erase(at);
    } else if (w == name) {
      if (k + 1 >= options_end()) throw UsageError(std::string(name) + " needs a value");
      result.push_back(words_[k + 1]);
      words_.erase(at, at + 2);
    } else {
      ++k;
    }
  }
  return result;
}

std::optional<int64_t> Args::integer(std::string_view name, int64_t min, int64_t max) {
  const auto text = value(name);
  if (!text) return std::nullopt;
  int64_t n = 0;
  const char *end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, n);
  if (ec != std::errc() || ptr != end || text->empty())
    throw UsageError(std::string(name) + " needs an integer, not '" + *text + "'");
  if (n < min || n > max)
    throw UsageError(std::string(name) + " must be between " + std::to_string(min) + " and " + std::to_string(max));
  return n;
}

std::optional<std::string> Args::shift() {
  const size_t end = options_end();
  for (size_t k = 0; k < words_.size(); ++k) {
    const std::string &w = words_[k];
    if (k == end || (k < end && w.size() > 1 && w[0] == '-')) continue;
    std::string word = w;
    words_.erase(words_.begin() + static_cast<std::ptrdiff_t>(k));
    return word;
  }
  return std::nullopt;
}

std::vector<std::string> Args::positionals(size_t min, size_t max, std::string_view missing_what) {
  std::vector<std::string> result;
  const size_t end = options_end();
  for (size_t k = 0; k < words_.size(); ++k) {
    if (k == end) continue;  // the "--" itself
    const std::string &w = words_[k];
    if (k < end && w.size() > 1 && w[0] == '-') throw UsageError("unknown option '" + w + "'");
    result.push_back(w);
  }
  if (result.size() < min) throw UsageError("missing " + std::string(missing_what));
  if (result.size() > max) throw UsageError("unexpected argument '" + result[max] + "'");
  return result;
}

// ----------------------------------------------------------------------------------------------- attaching

std::string socket_path(const GlobalOptions &g) {
  if (!g.socket.empty()) return g.socket;
  return doing("find the broker's socket", [&] { return weightbus::default_socket_path(g.name); });
}

namespace {

const char *kNoBrokerHint =
    "pass --socket PATH or --name BROKER to reach another broker, or run `weightbus demo` for a private one";

weightbus::Client attach_with(const wb_attach_options &opts, const std::string &path) {
  const std::string what = "attach to the broker at " + path;
  try {
    return weightbus::Client(&opts);
  } catch (const weightbus::Error &e) {
    throw Failure(what, e, e.code() == WB_E_CONNECT ? kNoBrokerHint : "");
  }
}

}  // namespace

weightbus::Client attach(const GlobalOptions &g, const char *client_name) {
  const std::string path = socket_path(g);  // resolved first: it must not run between wb_attach and check
  wb_attach_options opts = WB_ATTACH_OPTIONS_INIT;
  opts.socket_path = g.socket.empty() ? nullptr : g.socket.c_str();
  opts.broker_name = g.name.empty() ? nullptr : g.name.c_str();
  opts.client_name = client_name;
  return attach_with(opts, path);
}

weightbus::Client attach_to(const std::string &socket, const char *client_name, int64_t timeout_ms) {
  wb_attach_options opts = WB_ATTACH_OPTIONS_INIT;
  opts.socket_path = socket.c_str();
  opts.client_name = client_name;
  opts.timeout_ms = timeout_ms;
  return attach_with(opts, socket);
}

weightbus::Topic open_topic(weightbus::Client &client, const std::string &name) {
  return doing("open topic '" + name + "'", [&] { return client.open(name); });
}

// ----------------------------------------------------------------------------------------------- formatting

std::string fixed_string(const char *field, size_t capacity) { return std::string(field, strnlen(field, capacity)); }

std::string dtype_string(int32_t dtype) {
  const char *name = wb_dtype_name(dtype);
  return name ? name : "dtype " + std::to_string(dtype);
}

std::string shape_string(const int64_t *shape, uint32_t ndim) {
  std::string out = "[";
  for (uint32_t d = 0; d < ndim; ++d) {
    if (d > 0) out += ", ";
    out += std::to_string(shape[d]);
  }
  return out + "]";
}

std::string human_bytes(uint64_t bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  // One decimal only where it carries information (1.5 MiB, not 256.0 KiB).
  std::snprintf(buf, sizeof buf, value < 10 ? "%.1f %s" : "%.0f %s", value, units[unit]);
  return buf;
}

std::string format_time(uint64_t realtime_ns) {
  const auto seconds = static_cast<time_t>(realtime_ns / 1000000000u);
  const auto millis = static_cast<unsigned>(realtime_ns / 1000000u % 1000u);
  struct tm tm {};
  localtime_r(&seconds, &tm);
  char date[32], zone[8], buf[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::strftime(zone, sizeof zone, "%z", &tm);
  std::snprintf(buf, sizeof buf, "%s.%03u%s", date, millis, zone);
  return buf;
}

size_t display_width(std::string_view utf8) {
  size_t width = 0;
  for (size_t i = 0; i < utf8.size(); ++width) next_code_point(utf8, i);
  return width;
}

namespace {

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report a failing stdout/stderr; a closed pipe raises SIGPIPE anyway
    text.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void out_line(const std::string &line) { write_all(STDOUT_FILENO, line + "\n"); }
void err_line(const std::string &line) { write_all(STDERR_FILENO, line + "\n"); }
void out_text(const std::string &text) { write_all(STDOUT_FILENO, text); }

void print_table(const std::vector<std::vector<std::string>> &rows, std::string_view indent) {
  std::vector<size_t> widths;
  for (const auto &row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  for (const auto &row : rows) {
    std::string line(indent);
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - display_width(row[c]) + 2, ' ');
    }
    out_line(line);
  }
}

int64_t monotonic_ms() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace wbcli
