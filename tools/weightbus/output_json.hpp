// The commands' --json output: documents built with nlohmann's ordered_json, whose members keep the order in
// which they are added, printed on one line.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace wbcli {

using Json = nlohmann::ordered_json;

// doc on one line without spaces. Bytes that are not UTF-8 become U+FFFD: JSON text must be UTF-8, and registry
// names or metadata are not guaranteed to be.
std::string json_text(const Json &doc);
// Prints json_text(doc) as one line of stdout (out_line).
void out_json(const Json &doc);

}  // namespace wbcli
