#include "expr.hpp"

#include <cctype>

namespace wbcli {
namespace {

class Parser {
 public:
  Parser(const std::string &text, const Values &values) : text_(text), values_(values) {}

  int64_t parse() {
    const int64_t v = sum();
    skip_space();
    if (pos_ < text_.size()) fail("unexpected '" + std::string(1, text_[pos_]) + "'");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string &why) const {
    throw ExprError("'" + text_ + "' at offset " + std::to_string(pos_) + ": " + why);
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  bool take(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) return ++pos_, true;
    return false;
  }

  // op is one of the __builtin_*_overflow functions.
  template <class Op>
  int64_t checked(Op op, int64_t a, int64_t b) const {
    int64_t r = 0;
    if (op(a, b, &r)) fail("the result overflows 64 bits");
    return r;
  }
  static bool add(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
  static bool sub(int64_t a, int64_t b, int64_t *r) { return __builtin_sub_overflow(a, b, r); }
  static bool mul(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }

  int64_t sum() {
    int64_t v = product();
    for (;;) {
      if (take('+')) {
        v = checked(add, v, product());
      } else if (take('-')) {
        v = checked(sub, v, product());
      } else {
        return v;
      }
    }
  }

  int64_t product() {
    int64_t v = unary();
    for (;;) {
      if (take('*')) {
        v = checked(mul, v, unary());
      } else if (take('/')) {
        const int64_t rhs = divisor();
        if (v % rhs != 0) fail(std::to_string(v) + " is not a multiple of " + std::to_string(rhs));
        v /= rhs;
      } else if (take('%')) {
        v %= divisor();
      } else {
        return v;
      }
    }
  }

  int64_t divisor() {
    const int64_t d = unary();
    if (d == 0) fail("division by zero");
    if (d == -1) fail("division by -1");  // INT64_MIN / -1 overflows; no layout needs it
    return d;
  }

  int64_t unary() {
    if (!take('-')) return atom();
    return checked(sub, 0, unary());
  }

  int64_t atom() {
    skip_space();
    if (pos_ >= text_.size()) fail("expected a number, a name or '('");
    const char c = text_[pos_];
    if (take('(')) {
      const int64_t v = sum();
      if (!take(')')) fail("expected ')'");
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') return name();
    fail("expected a number, a name or '(', not '" + std::string(1, c) + "'");
  }

  int64_t number() {
    int64_t v = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      v = checked(add, checked(mul, v, 10), text_[pos_] - '0');
      ++pos_;
    }
    return v;
  }

  int64_t name() {
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' || text_[pos_] == '.'))
      ++pos_;
    const std::string n = text_.substr(start, pos_ - start);
    const auto it = values_.find(n);
    if (it == values_.end()) {
      pos_ = start;
      fail("unknown value '" + n + "' (give it with --config or --set " + n + "=N)");
    }
    return it->second;
  }

  const std::string &text_;
  const Values &values_;
  size_t pos_ = 0;
};

}  // namespace

int64_t evaluate(const std::string &text, const Values &values) { return Parser(text, values).parse(); }

}  // namespace wbcli
