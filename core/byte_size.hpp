// Byte counts on command lines: digits with an optional binary suffix (K, M, G or T: 2^10, 2^20, 2^30, 2^40),
// e.g. 4096, 10K, 512M, 4G. The one parser of every size option of `weightbus` and of weightbusd.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace wb {

// Sets *out to the byte count text names and returns true; or returns false with *why saying what is wrong
// (naming the text, for the caller to prefix with the option's name). min and max bound the result.
inline bool parse_byte_size(std::string_view text, uint64_t min, uint64_t max, uint64_t *out, std::string *why) {
  static constexpr std::string_view kSuffixes = "KMGT";
  const std::string quoted = "'" + std::string(text) + "'";
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return *why = quoted + " is not a byte count (digits with an optional K, M, G or T)", false;
  int shift = 0;
  if (digits < text.size()) {
    const size_t unit = kSuffixes.find(text[digits]);
    if (unit == std::string_view::npos || digits + 1 != text.size())
      return *why = quoted + " has an unknown size suffix '" + std::string(text.substr(digits)) +
                    "' (K, M, G or T: powers of 1024)",
             false;
    shift = 10 * int(unit + 1);
  }
  uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || ptr != text.data() + digits || value > (UINT64_MAX >> shift))
    return *why = quoted + " is too large for 64 bits", false;
  value <<= shift;
  if (value < min || value > max)
    return *why = quoted + " is " + std::to_string(value) + " bytes, " +
                  (value < min ? "less than " + std::to_string(min) : "more than " + std::to_string(max)),
           false;
  *out = value;
  return true;
}

}  // namespace wb
