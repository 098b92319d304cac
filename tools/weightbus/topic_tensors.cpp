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

JsonObject tensor_json(const TopicTensor &t) {
  const wb_tensor_info &i = t.info;
  JsonObject o;
  o.str("name", t.name)
      .num("index", i.index)
      .str("dtype", dtype_string(i.dtype))
      .raw("shape", json_int_array(i.shape, i.ndim))
      .raw("strides", json_int_array(i.strides, i.ndim))
      .num("bytes", i.nbytes)
      .boolean("view", i.is_view != 0)
      .num("version", i.version)
      .str("device", i.device_type == WB_DEVICE_CUDA ? "cuda" : "host");
  return o;
}

}  // namespace wbcli
