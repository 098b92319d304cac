#include "json.hpp"

#include <cstdio>

namespace wbcli {
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

std::string escape_control(int32_t cp) {
  switch (cp) {
    case '\n':
      return "\\n";
    case '\t':
      return "\\t";
    case '\r':
      return "\\r";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    default:
      break;
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
  return buf;
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

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const int32_t cp = next_code_point(s, i);
    if (cp < 0) {
      out += "\\ufffd";
    } else if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp < 0x20) {
      out += escape_control(cp);
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += '"';
  return out;
}

std::string json_array(const std::vector<std::string> &items) {
  std::string out = "[";
  for (size_t k = 0; k < items.size(); ++k) {
    if (k > 0) out += ',';
    out += items[k];
  }
  return out + "]";
}

std::string json_int_array(const int64_t *values, uint32_t n) {
  std::vector<std::string> items;
  for (uint32_t d = 0; d < n; ++d) items.push_back(std::to_string(values[d]));
  return json_array(items);
}

JsonObject &JsonObject::raw(std::string_view key, std::string_view json) {
  if (body_.size() > 1) body_ += ',';
  body_ += json_quote(key);
  body_ += ':';
  body_ += json;
  return *this;
}

}  // namespace wbcli
