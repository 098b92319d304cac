// The tensors and views of an open topic, as the registry describes them (no version needed).
#pragma once

#include <string>
#include <vector>

#include "common.hpp"
#include "output_json.hpp"

namespace wbcli {

struct TopicTensor {
  wb_tensor_info info;
  std::string name;  // copied: info.name points into the registry and dies with the topic handle
};

std::vector<TopicTensor> topic_tensors(const weightbus::Topic &topic, const std::string &topic_name);

// {"name", "index", "dtype", "shape", "strides", "bytes", "view", "version", "device"}; callers may add members.
Json tensor_json(const TopicTensor &t);

// What `ls` and `info` say of a topic: {"name", "latest", "replicas", "tensor_count", "bytes", "publisher_pid",
// "dirty", "ranks", "layout_complete"}; callers may add members.
Json topic_info_json(const std::string &name, const wb_topic_info &info);

}  // namespace wbcli
