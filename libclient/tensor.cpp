// Allocating tensors, registering views, and the C ABI's description of a topic's tensors (the lookups are
// tensor_list.cpp's, the description itself tensor_info.cpp's).
#include <cstring>

#include "client.hpp"
#include "error.hpp"
#include "geometry.hpp"
#include "struct_size.hpp"
#include "tensor_info.hpp"
#include "tensor_spec.hpp"
#include "topic.hpp"

namespace wb {

namespace {

// Specs per AllocTensors message: keeps each message well under wire::kMaxMessage.
constexpr uint32_t kSpecsPerMessage = 128;

int alloc_batch(wb_topic *topic, const std::vector<TensorRequest> &requests, uint32_t first, uint32_t count) {
  flatbuffers::FlatBufferBuilder builder;
  std::vector<flatbuffers::Offset<proto::TensorSpec>> entries;
  for (uint32_t i = first; i < first + count; ++i) {
    const TensorRequest &r = requests[i];
    std::vector<int64_t> shape(r.shape, r.shape + r.ndim);
    auto shard = build_shard(builder, r);
    entries.push_back(proto::CreateTensorSpecDirect(builder, r.name, r.dtype, &shape, shard));
  }
  auto body = proto::CreateAllocTensorsDirect(builder, topic->slot, &entries);
  Reply reply;
  int rc = topic->client->connection.call(builder, proto::Body::AllocTensors, body.Union(), &reply);
  if (rc != WB_OK) return rc;
  if (reply.fds.empty()) return WB_OK;  // every name already existed with this definition
  // Running out of memory here leaves the tensors made: the retry finds them, and maps them on first use.
  return topic->client->allocations.adopt(uint32_t(reply.value), reply.fds[0], reply.size);
}

}  // namespace

// Several messages when there are many specs: each is all or nothing, and a retry finds what the earlier ones
// made (the same definitions are accepted again).
int alloc_host(wb_topic *topic, const std::vector<TensorRequest> &requests) {
  uint32_t count = uint32_t(requests.size());
  for (uint32_t first = 0; first < count; first += kSpecsPerMessage) {
    int rc = alloc_batch(topic, requests, first, std::min(kSpecsPerMessage, count - first));
    if (rc != WB_OK) return rc;
  }
  return WB_OK;
}

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_tensor_alloc(wb_topic *topic, const wb_tensor_spec *specs, uint32_t count) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  std::vector<TensorRequest> requests;
  int rc = read_requests(specs, count, &requests);
  if (rc != WB_OK) return rc;
  if (!topic->publisher) return fail(WB_E_ROLE, "only the publisher of '%s' may allocate tensors", topic->entry->name);
  return alloc_host(topic, requests);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_tensor_view(wb_topic *topic, const wb_view_spec *spec) try {
  if (topic == nullptr || spec == nullptr) return fail(WB_E_INVAL, "topic or spec is NULL");
  int rc = check_struct_size(spec->struct_size, sizeof(wb_view_spec), "wb_view_spec");
  if (rc != WB_OK || (rc = geometry::check_name(spec->name, "view")) != WB_OK ||
      (rc = geometry::check_name(spec->parent, "parent")) != WB_OK) {
    return rc;
  }
  uint64_t span;
  if ((rc = geometry::strided_span(spec->dtype, spec->ndim, spec->shape, spec->strides, &span)) != WB_OK) {
    return fail(rc, "view '%s': %s", spec->name, wb_last_error());
  }
  flatbuffers::FlatBufferBuilder builder;
  std::vector<int64_t> shape(spec->shape, spec->shape + spec->ndim);
  std::vector<int64_t> strides(spec->strides, spec->strides + spec->ndim);
  auto body = proto::CreateCreateViewDirect(builder, topic->slot, spec->name, spec->parent, spec->dtype,
                                            spec->byte_offset, &shape, &strides);
  Reply reply;
  return topic->client->connection.call(builder, proto::Body::CreateView, body.Union(), &reply);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_tensor_count(wb_topic *topic, uint32_t *count) try {
  if (topic == nullptr || count == nullptr) return fail(WB_E_INVAL, "topic or count is NULL");
  if (int rc = check_topic_live(topic); rc != WB_OK) return rc;
  *count = topic->entry->tensor_count.load(std::memory_order_acquire);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_tensor(wb_topic *topic, uint32_t position, wb_tensor_info *out) try {
  if (topic == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t tensor_slot = 0;  // set by TensorList::at; GCC -O2 cannot tell
  if (rc != WB_OK || (rc = check_topic_live(topic)) != WB_OK) return rc;
  if ((rc = topic->tensors.at(position, &tensor_slot)) != WB_OK) return rc;
  describe_tensor(topic->client->seg, tensor_slot, position, out);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
