// What every command shares: option parsing, errors, attaching, listing and text formatting.
#pragma once

#include <weightbus/weightbus.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wbcli {

// Options accepted before or after any command.
struct GlobalOptions {
  std::string socket;  // empty: the library resolves it ($WEIGHTBUS_SOCKET, then the broker name)
  std::string name;    // empty: $WEIGHTBUS_NAME, else "default"
  bool json = false;
};

// A mistake on the command line: main prints it with the command's usage line and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A weightbus call failed (cause, thrown by weightbus.hpp) while the command was doing what().
struct Failure : std::runtime_error {
  Failure(const std::string &what, const weightbus::Error &cause, std::string hint = {});
  weightbus::Error cause;
  std::string hint;  // an extra line for a newcomer, may be empty
};

// Runs call, made of weightbus.hpp's calls: a weightbus::Error it throws becomes a Failure saying what the command
// was doing.
template <class Call>
auto doing(const std::string &what, Call &&call) -> decltype(call()) {
  try {
    return call();
  } catch (const weightbus::Error &e) {
    throw Failure(what, e);
  }
}

// Prints the exception being handled ("weightbus: <what>: <code>: <message>") and returns the exit status for
// it. Call only from a catch block. UsageError is not handled here: it needs the command's usage.
int report_current_exception();

// A command line parsed with getopt_long against a spec of the options it may hold: words separated by spaces,
// each an option's long name, "name:" for one that takes a value, "l|long" for one with a short name too, a
// letter alone for a short name only ("socket: name: json h|help V"). Options may stand before, between or
// after the other words, with their values as "--name value" or "--name=value"; words after "--" are never
// options. An unknown option, a flag given a value or an option missing its value is a UsageError. The methods
// read what was given, by the option's name ("--long", or "-V" for a short name only); asking for an option
// the spec does not declare is a mistake of this program (std::logic_error).
class Args {
 public:
  Args() = default;
  Args(const std::vector<std::string> &words, std::string_view spec);
  bool flag(std::string_view name) const;
  // The last value given (the last one wins, as in most tools).
  std::optional<std::string> value(std::string_view name) const;
  // Every value of an option that may be repeated (--set a=1 --set b=2), in order.
  std::vector<std::string> values(std::string_view name) const;
  std::optional<int64_t> integer(std::string_view name, int64_t min, int64_t max) const;
  // A byte count with an optional K, M, G or T suffix (core/byte_size.hpp), between min and max.
  std::optional<uint64_t> bytes(std::string_view name, uint64_t min, uint64_t max) const;
  // The words that are not options, in order; UsageError for fewer than min (missing_what names what is
  // missing) or more than max.
  std::vector<std::string> positionals(size_t min, size_t max, std::string_view missing_what = "an argument") const;
  // The first word that is not an option, taken out of the positionals (the command word), if any.
  std::optional<std::string> shift();

 private:
  const std::vector<std::string> &given(std::string_view name) const;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;  // "--name" -> values ("" for a flag)
  std::vector<std::string> words_;
};

// The socket path the library will use for these options. Throws Failure for a name that makes no path.
std::string socket_path(const GlobalOptions &g);
// Attaches with the global options; client_name is what `weightbus clients` shows for us.
weightbus::Client attach(const GlobalOptions &g, const char *client_name);
// Attaches to an explicit socket, with the given control timeout.
weightbus::Client attach_to(const std::string &socket, const char *client_name, int64_t timeout_ms);
weightbus::Topic open_topic(weightbus::Client &client, const std::string &name);

// A fixed-size char field of a registry struct, which might lack its NUL.
std::string fixed_string(const char *field, size_t capacity);
std::string dtype_string(int32_t dtype);                        // "f32", or "dtype 42" for an unknown one
std::string shape_string(const int64_t *shape, uint32_t ndim);  // "[256, 256]"; "[]" for a scalar
std::string human_bytes(uint64_t bytes);                        // "512 B", "1.0 MiB", "24 GiB"
std::string format_time(uint64_t realtime_ns);                  // local ISO 8601 with milliseconds
size_t display_width(std::string_view utf8);                    // code points, for aligning columns
// Decodes the UTF-8 sequence at s[i] and advances i past it. Returns the code point, or -1 for a byte that does
// not start a valid sequence (overlong, surrogate, truncated...), advancing one byte so that scanning goes on.
int32_t next_code_point(std::string_view s, size_t &i);

// Output is written line by line with write(2): lines reach a pipe as soon as they are printed, and the demo's
// processes, which share stdout, never interleave within a line.
void out_line(const std::string &line);
void err_line(const std::string &line);
void out_text(const std::string &text);  // several lines at once (help)

// Prints rows as left-aligned columns, the first row being the header.
void print_table(const std::vector<std::vector<std::string>> &rows, std::string_view indent = "");

int64_t monotonic_ms();
void sleep_ms(int64_t ms);

}  // namespace wbcli
