// Allocating tensors, registering views, and this process's index of a topic's tensors.
#include <cstring>
#include <mutex>

#include "client_internal.hpp"
#include "error.hpp"
#include "geometry.hpp"

namespace wb {

namespace {

// Specs per AllocTensors message: keeps each message well under wire::kMaxMessage.
constexpr uint32_t kSpecsPerMessage = 128;

int alloc_batch(wb_topic *topic, const wb_tensor_spec *specs, uint32_t first, uint32_t count) {
  flatbuffers::FlatBufferBuilder builder;
  std::vector<flatbuffers::Offset<proto::TensorSpec>> entries;
  for (uint32_t i = first; i < first + count; ++i) {
    const wb_tensor_spec &spec = spec_at(specs, i);
    std::vector<int64_t> shape(spec.shape, spec.shape + spec.ndim);
    entries.push_back(proto::CreateTensorSpecDirect(builder, spec.name, spec.dtype, &shape));
  }
  auto body = proto::CreateAllocTensorsDirect(builder, topic->index, &entries);
  Reply reply;
  int rc = request(topic->client, builder, proto::Body::AllocTensors, body.Union(), &reply);
  if (rc != WB_OK) return rc;
  if (reply.fds.empty()) return WB_OK;  // every name already existed with this definition
  // Running out of memory here leaves the tensors made: the retry finds them, and maps them on first use.
  return topic->client->allocations.adopt(uint32_t(reply.value), reply.fds[0], reply.size);
}

}  // namespace

const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i) {
  return *reinterpret_cast<const wb_tensor_spec *>(reinterpret_cast<const char *>(specs) +
                                                   size_t(i) * specs[0].struct_size);
}

int check_spec(const wb_tensor_spec &spec) {
  int rc = geometry::check_name(spec.name, "tensor");
  if (rc != WB_OK) return rc;
  uint64_t nbytes;
  rc = geometry::contiguous_bytes(spec.dtype, spec.ndim, spec.shape, &nbytes);
  if (rc != WB_OK) return fail(rc, "tensor '%s': %s", spec.name, wb_last_error());
  return WB_OK;
}

void describe_tensor(const shm::Segment &seg, uint32_t t, uint32_t position, wb_tensor_info *info) {
  const shm::Tensor &e = seg.tensor(t);
  const shm::Tensor &root = seg.tensor(e.root);
  info->index = position;
  info->name = e.name;
  info->dtype = e.dtype;
  info->ndim = e.ndim;
  memcpy(info->shape, e.shape, sizeof(info->shape));
  memcpy(info->strides, e.strides, sizeof(info->strides));
  info->nbytes = e.nbytes;
  info->data = nullptr;
  info->device_type = root.device_type;
  info->is_view = e.is_view;
  memcpy(info->device_uuid, seg.allocation(root.allocation).device_uuid, sizeof(info->device_uuid));
  uint64_t newest = 0;
  for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) {
    uint64_t word = root.replica_version[r].load(std::memory_order_acquire);
    if (word != shm::kNeverWritten && !(word & shm::kWritingBit) && word > newest) newest = word;
  }
  info->version = newest;
}

void refresh_layout(wb_topic *topic) {
  const shm::Segment &seg = topic->client->seg;
  uint32_t gen = topic->entry->layout_gen.load(std::memory_order_acquire);
  if (gen == topic->layout_gen.load(std::memory_order_acquire)) return;
  std::unique_lock lock(topic->layout_mutex);
  if (gen == topic->layout_gen.load(std::memory_order_relaxed)) return;
  uint32_t count = topic->entry->tensor_count.load(std::memory_order_acquire);
  uint32_t t = count > 0 ? topic->entry->first_tensor : shm::kNone;
  // Built aside and swapped in: running out of memory half-way leaves the previous layout whole.
  std::vector<uint32_t> order;
  std::unordered_map<std::string, uint32_t> by_name;
  for (uint32_t i = 0; i < count && t < seg.caps().max_tensors; ++i) {
    by_name.emplace(seg.tensor(t).name, uint32_t(order.size()));
    order.push_back(t);
    t = seg.tensor(t).next.load(std::memory_order_acquire);
  }
  topic->order.swap(order);
  topic->by_name.swap(by_name);
  topic->layout_gen.store(gen, std::memory_order_release);
}

namespace {

// The lookups of the layout, with layout_mutex held (shared): a name's position, a position's tensor.
int position_of(const wb_topic *topic, const char *name, uint32_t *position) {
  int rc = geometry::check_name(name, "tensor");
  if (rc != WB_OK) return rc;
  auto found = topic->by_name.find(name);
  if (found == topic->by_name.end()) {
    return fail(WB_E_NOT_FOUND, "topic '%s' has no tensor '%s'", topic->entry->name, name);
  }
  *position = found->second;
  return WB_OK;
}

int tensor_at_position(const wb_topic *topic, uint32_t position, uint32_t *t) {
  if (position >= topic->order.size()) {
    return fail(WB_E_NOT_FOUND, "topic '%s' has no tensor at index %u", topic->entry->name, position);
  }
  *t = topic->order[position];
  return WB_OK;
}

bool holds(const wb_topic *topic, uint32_t position, const char *name) {
  return position < topic->order.size() &&
         strcmp(topic->client->seg.tensor(topic->order[position]).name, name) == 0;
}

}  // namespace

int find_tensor(wb_topic *topic, const char *name, uint32_t *t, uint32_t *position) {
  refresh_layout(topic);
  std::shared_lock lock(topic->layout_mutex);
  int rc = position_of(topic, name, position);
  return rc == WB_OK ? tensor_at_position(topic, *position, t) : rc;
}

int tensor_at(wb_topic *topic, uint32_t position, uint32_t *t) {
  refresh_layout(topic);
  std::shared_lock lock(topic->layout_mutex);
  return tensor_at_position(topic, position, t);
}

int find_tensors(wb_topic *topic, const std::vector<TensorKey> &keys, std::vector<uint32_t> *t,
                 std::vector<uint32_t> *positions, uint32_t *failed) {
  t->resize(keys.size());
  positions->resize(keys.size());
  refresh_layout(topic);
  std::lock_guard batch(topic->batch_mutex);
  std::vector<uint32_t> &guesses = topic->batch_positions;
  guesses.resize(keys.size(), UINT32_MAX);
  std::shared_lock lock(topic->layout_mutex);
  for (size_t i = 0; i < keys.size(); ++i) {
    const TensorKey &key = keys[i];
    uint32_t position = key.name == nullptr ? key.position : guesses[i];
    const bool known = key.name == nullptr || holds(topic, position, key.name);
    int rc = known ? WB_OK : position_of(topic, key.name, &position);
    if (rc == WB_OK) rc = tensor_at_position(topic, position, &(*t)[i]);
    if (rc != WB_OK) {
      *failed = uint32_t(i);
      return rc;
    }
    guesses[i] = (*positions)[i] = position;
  }
  return WB_OK;
}

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_tensor_alloc(wb_topic *topic, const wb_tensor_spec *specs, uint32_t count) try {
  if (topic == nullptr || specs == nullptr || count == 0) return fail(WB_E_INVAL, "topic or specs is NULL, or count is 0");
  int rc = check_struct_size(specs[0].struct_size, sizeof(wb_tensor_spec), "wb_tensor_spec");
  if (rc != WB_OK) return rc;
  if (!topic->publisher) return fail(WB_E_ROLE, "only the publisher of '%s' may allocate tensors", topic->entry->name);
  for (uint32_t i = 0; i < count; ++i) {
    if ((rc = check_spec(spec_at(specs, i))) != WB_OK) return rc;
  }
  for (uint32_t first = 0; first < count; first += kSpecsPerMessage) {
    rc = alloc_batch(topic, specs, first, std::min(kSpecsPerMessage, count - first));
    if (rc != WB_OK) return rc;
  }
  return WB_OK;
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
  auto body = proto::CreateCreateViewDirect(builder, topic->index, spec->name, spec->parent, spec->dtype,
                                            spec->byte_offset, &shape, &strides);
  Reply reply;
  return request(topic->client, builder, proto::Body::CreateView, body.Union(), &reply);
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

extern "C" WB_API int wb_topic_tensor(wb_topic *topic, uint32_t index, wb_tensor_info *out) try {
  if (topic == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t t = 0;  // set by tensor_at; GCC -O2 cannot tell
  if (rc != WB_OK || (rc = check_topic_live(topic)) != WB_OK || (rc = tensor_at(topic, index, &t)) != WB_OK) return rc;
  describe_tensor(topic->client->seg, t, index, out);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
