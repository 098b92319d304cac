#include "topic_layout.hpp"

#include <algorithm>
#include <cstring>

#include "failures.hpp"

namespace wbrelay {

namespace {

TensorLayout describe(const wb_tensor_info &info) {
  TensorLayout t;
  t.name = info.name;
  t.dtype = info.dtype;
  t.ndim = info.ndim;
  std::copy(info.shape, info.shape + WB_MAX_DIMS, t.shape);
  std::copy(info.strides, info.strides + WB_MAX_DIMS, t.strides);
  t.nbytes = info.nbytes;
  t.cuda = info.device_type == WB_DEVICE_CUDA;
  t.is_view = info.is_view != 0;
  return t;
}

// The root whose bytes [data, data + nbytes) hold p.
const wb_tensor_info *root_holding(const std::vector<wb_tensor_info> &infos, const char *p) {
  for (const wb_tensor_info &r : infos) {
    const char *base = static_cast<const char *>(r.data);
    if (!r.is_view && p >= base && p < base + r.nbytes) return &r;
  }
  return nullptr;
}

}  // namespace

TopicLayout read_layout(const weightbus::Topic &topic, const weightbus::Snapshot &snapshot) {
  const wb_topic_info ti = doing("wb_topic_get_info", [&] { return topic.info(); });
  std::vector<wb_tensor_info> infos(ti.tensor_count);
  for (uint32_t i = 0; i < ti.tensor_count; ++i) {
    infos[i] = doing("tensor " + std::to_string(i) + " of the topic", [&] { return snapshot.tensor(i); });
  }
  TopicLayout layout;
  layout.replicas = ti.replicas;
  for (const wb_tensor_info &info : infos) {
    TensorLayout t = describe(info);
    if (t.is_view) {
      const wb_tensor_info *root = root_holding(infos, static_cast<const char *>(info.data));
      if (root == nullptr) throw RelayError(kExitFailure, std::string("view '") + info.name + "' lies in no tensor");
      t.parent = root->name;
      t.byte_offset = uint64_t(static_cast<const char *>(info.data) - static_cast<const char *>(root->data));
    }
    layout.tensors.push_back(std::move(t));
  }
  return layout;
}

void encode_layout(const TopicLayout &layout, Writer &out) {
  out.u32(layout.replicas).u32(uint32_t(layout.tensors.size()));
  for (const TensorLayout &t : layout.tensors) {
    out.str(t.name).u32(uint32_t(t.dtype)).u32(t.ndim).u64(t.nbytes).u32(t.cuda).u32(t.is_view);
    for (uint32_t d = 0; d < t.ndim; ++d) out.i64(t.shape[d]).i64(t.strides[d]);
    if (t.is_view) out.str(t.parent).u64(t.byte_offset);
  }
}

TopicLayout decode_layout(Reader &in) {
  TopicLayout layout;
  layout.replicas = in.u32();
  uint32_t count = in.u32();
  if (layout.replicas < 1 || layout.replicas > WB_MAX_REPLICAS) throw PeerError("malformed layout: replicas");
  for (uint32_t i = 0; i < count; ++i) {
    TensorLayout t;
    t.name = in.str(WB_NAME_MAX);
    t.dtype = int32_t(in.u32());
    t.ndim = in.u32();
    t.nbytes = in.u64();
    t.cuda = in.u32() != 0;
    t.is_view = in.u32() != 0;
    if (t.ndim > WB_MAX_DIMS) throw PeerError("malformed layout: tensor '" + t.name + "' has too many dimensions");
    for (uint32_t d = 0; d < t.ndim; ++d) {
      t.shape[d] = in.i64();
      t.strides[d] = in.i64();
    }
    if (t.is_view) {
      t.parent = in.str(WB_NAME_MAX);
      t.byte_offset = in.u64();
    }
    layout.tensors.push_back(std::move(t));
  }
  if (!in.done()) throw PeerError("malformed layout: trailing bytes");
  return layout;
}

std::string layout_difference(const TopicLayout &a, const TopicLayout &b) {
  if (a.replicas != b.replicas) {
    return "replicas " + std::to_string(a.replicas) + " here, " + std::to_string(b.replicas) + " at the source";
  }
  if (a.tensors.size() != b.tensors.size()) {
    return std::to_string(a.tensors.size()) + " tensors here, " + std::to_string(b.tensors.size()) + " at the source";
  }
  for (const TensorLayout &x : b.tensors) {
    auto same_name = [&](const TensorLayout &y) { return y.name == x.name; };
    auto it = std::find_if(a.tensors.begin(), a.tensors.end(), same_name);
    if (it == a.tensors.end()) return "no tensor '" + x.name + "' here";
    bool same = it->dtype == x.dtype && it->ndim == x.ndim && it->nbytes == x.nbytes && it->cuda == x.cuda &&
                it->is_view == x.is_view && it->parent == x.parent && it->byte_offset == x.byte_offset &&
                std::equal(x.shape, x.shape + x.ndim, it->shape) && std::equal(x.strides, x.strides + x.ndim, it->strides);
    if (!same) return "tensor '" + x.name + "' differs (dtype, shape, device or view window)";
  }
  return {};
}

namespace {

void alloc_roots(weightbus::Topic &topic, const TopicLayout &layout, bool cuda, int32_t device) {
  std::vector<wb_tensor_spec> specs;
  for (const TensorLayout &t : layout.tensors) {
    if (t.is_view || t.cuda != cuda) continue;
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.dtype = t.dtype;
    s.name = t.name.c_str();
    s.ndim = t.ndim;
    std::copy(t.shape, t.shape + WB_MAX_DIMS, s.shape);
    specs.push_back(s);
  }
  if (specs.empty()) return;
  const std::string what = std::string("allocating ") + std::to_string(specs.size()) + (cuda ? " CUDA" : " host") + " tensors";
  doing(what, [&] { cuda ? topic.alloc_cuda(specs, device) : topic.alloc(specs); });
}

}  // namespace

void create_tensors(weightbus::Topic &topic, const TopicLayout &layout, int32_t device) {
  alloc_roots(topic, layout, false, device);
  alloc_roots(topic, layout, true, device);
  for (const TensorLayout &t : layout.tensors) {
    if (!t.is_view) continue;
    wb_view_spec v = WB_VIEW_SPEC_INIT;
    v.dtype = t.dtype;
    v.name = t.name.c_str();
    v.parent = t.parent.c_str();
    v.byte_offset = t.byte_offset;
    v.ndim = t.ndim;
    std::copy(t.shape, t.shape + WB_MAX_DIMS, v.shape);
    std::copy(t.strides, t.strides + WB_MAX_DIMS, v.strides);
    doing("view '" + t.name + "'", [&] { topic.view(v); });
  }
}

}  // namespace wbrelay

