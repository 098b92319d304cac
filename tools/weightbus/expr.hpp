// A small integer expression evaluator for layout specs: row ranges such as
// "num_attention_heads * head_dim" computed from a model's config values.
//
// Grammar: integers, names ([A-Za-z_][A-Za-z0-9_.]*, dots reach into nested config objects), + - * / %,
// unary minus and parentheses, with the usual precedence. Arithmetic is 64-bit and checked: overflow,
// division by zero and a division with a remainder (a layout that does not split evenly is a mistake, not
// something to round) are errors. There are no other operators, functions or side effects.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

namespace wbcli {

struct ExprError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Values = std::map<std::string, int64_t>;

// Evaluates text. Throws ExprError: "'a * b': unknown value 'b'", "... at offset 4: expected ')'", ...
int64_t evaluate(const std::string &text, const Values &values);

}  // namespace wbcli
