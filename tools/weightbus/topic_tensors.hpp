// The tensors and views of an open topic, as the registry describes them (no version needed).
#pragma once

#include <string>
#include <vector>

#include "common.hpp"
#include "json.hpp"

namespace wbcli {

struct TopicTensor {
  wb_tensor_info info;
  std::string name;  // copied: info.name points into the registry and dies with the topic handle
};

std::vector<TopicTensor> topic_tensors(const weightbus::Topic &topic, const std::string &topic_name);

// {"name", "index", "dtype", "shape", "strides", "bytes", "view", "version", "device"}; callers may add members.
JsonObject tensor_json(const TopicTensor &t);

}  // namespace wbcli
