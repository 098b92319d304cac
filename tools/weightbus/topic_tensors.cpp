#include "topic_tensors.hpp"

namespace wbcli {

std::vector<TopicTensor> topic_tensors(const weightbus::Topic &topic, const std::string &topic_name) {
  const uint32_t count = doing("count the tensors of topic '" + topic_name + "'", [&] { return topic.tensor_count(); });
  std::vector<TopicTensor> tensors;
  for (uint32_t i = 0; i < count; ++i) {
    TopicTensor t{doing("describe tensor " + std::to_string(i) + " of topic '" + topic_name + "'",
                        [&] { return topic.tensor(i); }),
                  {}};
    t.name = t.info.name ? t.info.name : "";
    tensors.push_back(std::move(t));
  }
  return tensors;
}

Json tensor_json(const TopicTensor &t) {
  const wb_tensor_info &i = t.info;
  return Json::object({{"name", t.name},
                       {"index", i.index},
                       {"dtype", dtype_string(i.dtype)},
                       {"shape", std::vector<int64_t>(i.shape, i.shape + i.ndim)},
                       {"strides", std::vector<int64_t>(i.strides, i.strides + i.ndim)},
                       {"bytes", i.nbytes},
                       {"view", i.is_view != 0},
                       {"version", i.version},
                       {"device", i.device_type == WB_DEVICE_CUDA ? "cuda" : "host"}});
}

Json topic_info_json(const std::string &name, const wb_topic_info &info) {
  return Json::object({{"name", name},
                       {"latest", info.latest},
                       {"replicas", info.replicas},
                       {"tensor_count", info.tensor_count},
                       {"bytes", info.bytes},
                       {"publisher_pid", info.publisher_pid},
                       {"dirty", info.dirty != 0},
                       {"ranks", info.ranks},
                       {"layout_complete", info.layout_complete != 0}});
}

}  // namespace wbcli
