#include "output_json.hpp"

#include "common.hpp"

namespace wbcli {

std::string json_text(const Json &doc) { return doc.dump(-1, ' ', false, Json::error_handler_t::replace); }

void out_json(const Json &doc) { out_line(json_text(doc)); }

}  // namespace wbcli
