#include "common.hpp"

#include <getopt.h>
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

#include "byte_size.hpp"

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

namespace {

// One option of a spec word: "name", "name:" (takes a value), "l|name" or "l|name:" (with a short name), "V" (a
// short name only).
struct OptionSpec {
  std::string name;  // without "--"; empty for a short option only
  bool takes_value = false;
  char letter = 0;
  std::string key() const { return name.empty() ? std::string("-") + letter : "--" + name; }
};

std::vector<OptionSpec> parse_spec(std::string_view spec) {
  std::vector<OptionSpec> options;
  for (size_t at = 0; at < spec.size();) {
    const size_t end = std::min(spec.find(' ', at), spec.size());
    std::string word(spec.substr(at, end - at));
    at = end + 1;
    if (word.empty()) continue;
    OptionSpec o;
    o.takes_value = word.ends_with(':');
    if (o.takes_value) word.pop_back();
    if (word.size() == 1 || (word.size() > 2 && word[1] == '|')) o.letter = word[0], word.erase(0, 2);
    o.name = std::move(word);
    options.push_back(std::move(o));
  }
  return options;
}

// What is wrong with the word getopt_long refused (argv[optind - 1]; optopt: the short option's letter, or the
// code of a long option given a value it does not take, or 0 for an unknown long option).
std::string refused(const char *word, const std::vector<OptionSpec> &options) {
  const std::string w = word;
  const std::string name = w.substr(0, w.find('='));
  if (!w.starts_with("--")) return std::string("unknown option -") + char(optopt);
  if (optopt >= 256 && size_t(optopt - 256) < options.size()) return name + " takes no value";
  return "unknown option " + name;
}

}  // namespace

Args::Args(const std::vector<std::string> &words, std::string_view spec) {
  const std::vector<OptionSpec> options = parse_spec(spec);
  std::vector<option> table;
  std::string shorts = ":";  // ':' first: a missing value is reported as ':', not as '?'
  for (size_t k = 0; k < options.size(); ++k) {
    const OptionSpec &o = options[k];
    if (!o.name.empty())
      table.push_back({o.name.c_str(), o.takes_value ? required_argument : no_argument, nullptr, int(256 + k)});
    values_[o.key()];  // declared, given or not
    if (o.letter) shorts += std::string(1, o.letter) + (o.takes_value ? ":" : "");
  }
  table.push_back({nullptr, 0, nullptr, 0});
  std::vector<std::string> copy = {"weightbus"};
  copy.insert(copy.end(), words.begin(), words.end());
  std::vector<char *> argv;
  for (std::string &w : copy) argv.push_back(w.data());
  argv.push_back(nullptr);
  const int argc = int(argv.size()) - 1;
  optind = 0;  // a full restart of getopt's scan
  opterr = 0;  // its messages are ours
  for (int code; (code = getopt_long(argc, argv.data(), shorts.c_str(), table.data(), nullptr)) != -1;) {
    if (code == '?') throw UsageError(refused(argv[optind - 1], options));
    if (code == ':') {
      const std::string w = argv[optind - 1];
      throw UsageError((w.starts_with("--") ? w : std::string("-") + char(optopt)) + " needs a value");
    }
    size_t k = size_t(code - 256);
    if (code < 256)
      k = size_t(std::find_if(options.begin(), options.end(), [&](const OptionSpec &o) { return o.letter == code; }) -
                 options.begin());
    values_[options[k].key()].push_back(optarg ? optarg : "");
  }
  words_.assign(argv.begin() + optind, argv.begin() + argc);
}

const std::vector<std::string> &Args::given(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error("option " + std::string(name) + " is not in the command's spec");
  return it->second;
}

bool Args::flag(std::string_view name) const { return !given(name).empty(); }

std::optional<std::string> Args::value(std::string_view name) const {
  const std::vector<std::string> &all = given(name);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::vector<std::string> Args::values(std::string_view name) const { return given(name); }

std::optional<int64_t> Args::integer(std::string_view name, int64_t min, int64_t max) const {
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

std::optional<uint64_t> Args::bytes(std::string_view name, uint64_t min, uint64_t max) const {
  const auto text = value(name);
  if (!text) return std::nullopt;
  uint64_t n = 0;
  std::string why;
  if (!wb::parse_byte_size(*text, min, max, &n, &why)) throw UsageError(std::string(name) + ": " + why);
  return n;
}

std::optional<std::string> Args::shift() {
  if (words_.empty()) return std::nullopt;
  std::string word = words_.front();
  words_.erase(words_.begin());
  return word;
}

std::vector<std::string> Args::positionals(size_t min, size_t max, std::string_view missing_what) const {
  if (words_.size() < min) throw UsageError("missing " + std::string(missing_what));
  if (words_.size() > max) throw UsageError("unexpected argument '" + words_[max] + "'");
  return words_;
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

namespace {

// Bytes that follow a lead byte, and the smallest code point that many may encode (to refuse overlong forms).
struct Lead {
  int extra;
  int32_t min;
  int32_t bits;
};

bool lead_of(unsigned char b, Lead *out) {
  if (b < 0x80) return *out = {0, 0, b}, true;
  if ((b & 0xE0) == 0xC0) return *out = {1, 0x80, b & 0x1F}, true;
  if ((b & 0xF0) == 0xE0) return *out = {2, 0x800, b & 0x0F}, true;
  if ((b & 0xF8) == 0xF0) return *out = {3, 0x10000, b & 0x07}, true;
  return false;
}

}  // namespace

int32_t next_code_point(std::string_view s, size_t &i) {
  const size_t start = i++;
  Lead lead{};
  if (!lead_of(static_cast<unsigned char>(s[start]), &lead)) return -1;
  if (start + lead.extra >= s.size()) return -1;  // truncated at the end of s
  int32_t cp = lead.bits;
  for (int k = 1; k <= lead.extra; ++k) {
    const auto b = static_cast<unsigned char>(s[start + k]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < lead.min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i = start + 1 + lead.extra;
  return cp;
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
