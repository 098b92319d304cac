// Just enough JSON output for `--json`: a string escaper and an object builder. The tool only writes JSON, so
// there is no parser.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wbcli {

// Decodes the UTF-8 sequence at s[i] and advances i past it. Returns the code point, or -1 for a byte that does
// not start a valid sequence (overlong, surrogate, truncated...), advancing one byte so that scanning goes on.
int32_t next_code_point(std::string_view s, size_t &i);

// s as a JSON string literal, quotes included. Bytes that are not valid UTF-8 become U+FFFD, because JSON text
// must be UTF-8 and registry names or metadata are not guaranteed to be.
std::string json_quote(std::string_view s);

// "[a,b,...]" from values that are JSON already.
std::string json_array(const std::vector<std::string> &items);

// "[1,2,...]" from n integers (shapes, strides, offsets).
std::string json_int_array(const int64_t *values, uint32_t n);

// One JSON object, members in the order they are added. Each kind of value has its own method name because
// overloads on string_view and bool would silently send string literals to the bool one.
class JsonObject {
 public:
  JsonObject &str(std::string_view key, std::string_view value) { return raw(key, json_quote(value)); }
  template <std::integral T>
  JsonObject &num(std::string_view key, T value) {
    return raw(key, std::to_string(value));
  }
  JsonObject &boolean(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
  JsonObject &raw(std::string_view key, std::string_view json);
  std::string text() const { return body_ + "}"; }

 private:
  std::string body_ = "{";
};

}  // namespace wbcli
