// Plans: a reader's destinations resolved once into region copies from a topic's shards, run every version.
// Creation checks every destination and part and turns each into row copies (plan_math.hpp) of source shards,
// kept as registry slots and byte offsets: a complete layout never changes, so the plan stays valid for every
// version, and each run only looks up which replica holds each source's bytes for the snapshot's version.
// Host-to-host copies are memcpy here; copies with a GPU on either side go to the CUDA part
// (cuda/plan_run.cpp: the plan kernel, made once per context), which a library built without cuda.h lacks: there
// they are WB_E_NO_CUDA. A destination that converts (weightbus.h, "Conversions") is compiled the same way in
// elements instead of bytes, and its copies become convert.hpp's rectangles, run on the host or by the conversion
// kernel (cuda/convert_run.cpp).
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "client.hpp"
#include "convert.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "geometry.hpp"
#include "layout.hpp"
#include "plan.hpp"
#include "plan_math.hpp"
#include "region.hpp"
#include "replica.hpp"
#include "snapshot.hpp"
#include "struct_size.hpp"
#include "tensor_info.hpp"
#include "topic.hpp"
#include "topic_state.hpp"

namespace {

// One destination's share of the plan, while it is made.
struct PlanDest {
  char *dst = nullptr;
  int32_t device = -1;
  std::vector<wb::plan::RowCopy> copies;  // source = index into wb_plan::sources; none when converting
  std::vector<wb::plan::ZeroFill> fills;
  bool converts = false;
  wb_convert_dest convert{};             // converting: the destination (first_rect indexes `rects`)
  std::vector<wb_convert_rect> rects;    // source = index into wb_plan::sources
};

// Converting destinations and their rectangles, of the host or of a GPU.
struct Conversions {
  std::vector<wb_convert_dest> dests;
  std::vector<wb_convert_rect> rects;
  bool empty() const { return dests.empty(); }
};

// A host-to-host copy (into host memory, from a source in host memory) and a zero fill in host memory, each
// with the first byte of its destination.
struct HostCopy {
  wb::plan::RowCopy copy;
  char *dst = nullptr;
};
struct HostFill {
  wb::plan::ZeroFill fill;
  char *dst = nullptr;
};

}  // namespace

struct wb_plan {
  wb_topic *topic = nullptr;
  std::vector<uint32_t> sources;  // registry slots of the tensors the plan reads, each once
  std::vector<uint32_t> source_root;  // the registry slot of each source's root (its own, unless a view)
  std::vector<uint32_t> source_rank;  // the rank storing each source, if a shard (else kNone)
  uint32_t replicas = 1;              // the topic's
  std::vector<bool> source_on_gpu;
  std::vector<int> source_ordinal;  // each GPU source's GPU in this process, found at the first run (-1 before)
  std::vector<HostCopy> host_copies;
  std::vector<HostFill> host_fills;
  std::vector<wb::cuda::PlanCopy> gpu_copies;
  std::vector<wb::cuda::Fill2D> gpu_fills;
  Conversions host_conversions, gpu_conversions;
  int gpu_ordinal = -1;  // a destination's GPU, if any is on one
  wb::cuda::PlanGpu *gpu = nullptr;
  wb::cuda::ConvertGpu *convert_gpu = nullptr;
  wb_plan_info info = WB_PLAN_INFO_INIT;  // what plan creation found; the arms' counts below
  std::atomic<uint64_t> arms{0}, gpu_arms{0}, gpu_arms_claimed{0};  // arms of different threads count at once
  // Where runs found each source in each replica (source k's replica r at k * replicas + r, if found_known),
  // good while the segment's allocations_epoch stays found_epoch (0: nothing kept).
  uint64_t found_epoch = 0;
  std::vector<wb::cuda::PlanSource> found;
  std::vector<uint8_t> found_known;

  wb_plan() = default;
  wb_plan(const wb_plan &) = delete;
  wb_plan &operator=(const wb_plan &) = delete;
  ~wb_plan() {
    wb::cuda::destroy_plan_gpu(gpu);
    wb::cuda::destroy_convert_gpu(convert_gpu);
  }
};

namespace wb {

namespace {

template <typename T>
const T &element_at(const T *array, uint32_t i) {
  return *reinterpret_cast<const T *>(reinterpret_cast<const char *>(array) + size_t(i) * array[0].struct_size);
}

// ---- creation ---------------------------------------------------------------------------------------------------

// What compiling one destination needs besides the caller's arrays.
struct Compiler {
  wb_topic *topic;
  wb_plan *plan;
  std::unordered_map<uint32_t, uint32_t> source_of_slot;  // registry slot -> index in plan->sources
  int device_count = -1;
  std::vector<PlanDest> dests;
};

// WB_E_STATE, naming the ranks that have not sealed, while a sharded topic's layout is incomplete.
int check_layout(const wb_topic *topic) {
  const shm::Topic &entry = *topic->entry;
  if (entry.ranks == 0 || entry.layout_complete.load(std::memory_order_acquire) != 0) return WB_OK;
  std::string unsealed;
  const shm::Segment &seg = topic->client->seg;
  for (uint32_t r = 0; r < entry.ranks; ++r) {
    if (seg.rank(entry.first_rank + r).sealed.load(std::memory_order_acquire) != 0) continue;
    unsealed += (unsealed.empty() ? "" : ", ") + std::to_string(r);
  }
  return fail(WB_E_STATE, "model '%s': its layout is not complete yet (rank(s) %s have not sealed): make the plan "
              "once every rank has sealed", entry.name, unsealed.empty() ? "none; coverage pending" : unsealed.c_str());
}

int check_device(Compiler *c, uint32_t i, int32_t device) {
  if (device < -1) return fail(WB_E_INVAL, "dests[%u].device is %d: a CUDA ordinal, or -1 for host memory", i, device);
  if (device == -1) return WB_OK;
  if (c->device_count < 0) {
    int rc = cuda::device_count(&c->device_count);
    if (rc != WB_OK) return fail(rc, "dests[%u].device is %d: %s", i, device, wb_last_error());
  }
  if (device >= c->device_count) {
    return fail(WB_E_INVAL, "dests[%u].device is %d, but this process sees %d GPU(s)", i, device, c->device_count);
  }
  return WB_OK;
}

// The destination's strides (elements): its own, or contiguous when all are 0.
int dest_strides(uint32_t i, const wb_slice_dest &dest, int64_t *strides) {
  bool given = false;
  for (uint32_t d = 0; d < dest.ndim; ++d) given |= dest.strides[d] != 0;
  if (!given) {
    geometry::contiguous_strides(dest.ndim, dest.shape, strides);
    return WB_OK;
  }
  for (uint32_t d = 0; d < dest.ndim; ++d) {
    if (dest.strides[d] <= 0 || (d + 1 == dest.ndim && dest.strides[d] != 1)) {
      return fail(WB_E_SHAPE, "dests[%u]: strides %s: each must be > 0 and the last 1", i,
                  region::format_shape(dest.ndim, dest.strides).c_str());
    }
    strides[d] = dest.strides[d];
  }
  return WB_OK;
}

int check_dest(Compiler *c, uint32_t i, const wb_slice_dest &dest, uint32_t part_count) {
  if (int rc = check_device(c, i, dest.device); rc != WB_OK) return rc;
  if (dest.part_count == 0 || dest.first_part > part_count || dest.part_count > part_count - dest.first_part) {
    return fail(WB_E_INVAL, "dests[%u]: parts [%u, %u + %u) are out of range: there are %u parts", i, dest.first_part,
                dest.first_part, dest.part_count, part_count);
  }
  if (dest.ndim > WB_MAX_DIMS) return fail(WB_E_SHAPE, "dests[%u]: ndim %u is over %d", i, dest.ndim, WB_MAX_DIMS);
  if (dest.concat_dim >= dest.ndim) {
    return fail(WB_E_SHAPE, "dests[%u]: concat_dim %u is not a dimension of its %u", i, dest.concat_dim, dest.ndim);
  }
  bool empty = false;
  for (uint32_t d = 0; d < dest.ndim; ++d) {
    if (dest.shape[d] < 0) {
      return fail(WB_E_SHAPE, "dests[%u]: shape %s has a negative extent", i,
                  region::format_shape(dest.ndim, dest.shape).c_str());
    }
    empty |= dest.shape[d] == 0;
  }
  // An empty buffer may have no address (PyTorch gives a tensor without elements none).
  if (dest.dst == nullptr && !empty) return fail(WB_E_INVAL, "dests[%u]: dst is NULL", i);
  return WB_OK;
}

// A part checked against its tensor and its destination.
int check_part(uint32_t i, uint32_t j, const wb_slice_part &part, const shm::Tensor &tensor, const wb_slice_dest &dest,
               int32_t src_dtype) {
  const char *name = tensor.name;
  if (tensor.dtype != src_dtype) {
    return fail(WB_E_DTYPE, "dests[%u] part %u ('%s'): the tensor's dtype is %s, the destination's first part's %s: "
                "a destination's parts have one dtype", i, j, name, wb_dtype_name(tensor.dtype),
                wb_dtype_name(src_dtype));
  }
  if (part.ndim != tensor.ndim || part.ndim != dest.ndim) {
    return fail(WB_E_SHAPE, "dests[%u] part %u ('%s'): ndim %u, but the tensor has %u and the destination %u", i, j,
                name, part.ndim, tensor.ndim, dest.ndim);
  }
  region::Box box;
  box.ndim = part.ndim;
  memcpy(box.offset, part.offset, sizeof(box.offset));
  memcpy(box.extent, part.extent, sizeof(box.extent));
  if (!region::inside(box, tensor.shape)) {
    return fail(WB_E_SHAPE, "dests[%u] part %u ('%s'): region %s lies outside its shape %s", i, j, name,
                region::format(box).c_str(), region::format_shape(tensor.ndim, tensor.shape).c_str());
  }
  if (part.pad < 0) return fail(WB_E_SHAPE, "dests[%u] part %u ('%s'): pad %lld is negative", i, j, name,
                                (long long)part.pad);
  for (uint32_t d = 0; d < dest.ndim; ++d) {
    if (d != dest.concat_dim && part.extent[d] != dest.shape[d]) {
      return fail(WB_E_SHAPE, "dests[%u] part %u ('%s'): region %s is %lld wide in dimension %u, the destination %s "
                  "%lld (parts may differ along concat_dim %u only)", i, j, name, region::format(box).c_str(),
                  (long long)part.extent[d], d, region::format_shape(dest.ndim, dest.shape).c_str(),
                  (long long)dest.shape[d], dest.concat_dim);
    }
  }
  return WB_OK;
}

// The shards of a topic's tensor as plan sources: a sharded topic's logical tensor's chain (replicas of one box
// read once, from the destination's GPU if one is there), or a plain tensor as the one shard of itself.
int shards_of(Compiler *c, uint32_t slot, const wb_slice_dest &dest, std::vector<uint32_t> *slots,
              std::vector<plan::Source> *sources) {
  const shm::Segment &seg = c->topic->client->seg;
  const shm::Tensor &tensor = seg.tensor(slot);
  if (tensor.role != uint32_t(shm::TensorRole::kLogical)) {
    plan::Source s;
    s.box = region::whole(tensor.ndim, tensor.shape);
    memcpy(s.strides, tensor.strides, sizeof(s.strides));
    slots->push_back(slot);
    sources->push_back(s);
    return WB_OK;
  }
  uint8_t dest_uuid[16] = {};
  if (dest.device >= 0) {
    if (int rc = wb_cuda_device_uuid(dest.device, dest_uuid); rc != WB_OK) return rc;
  }
  std::vector<plan::Candidate> candidates;
  std::vector<uint32_t> chain;
  uint32_t count = tensor.shard_count.load(std::memory_order_acquire);
  for (uint32_t s = tensor.first_shard, n = 0; n < count && s < seg.caps().max_tensors; ++n) {
    const shm::Tensor &shard = seg.tensor(s);
    plan::Candidate cand;
    cand.box.ndim = shard.ndim;
    memcpy(cand.box.offset, shard.region_offset, sizeof(cand.box.offset));
    memcpy(cand.box.extent, shard.shape, sizeof(cand.box.extent));
    cand.rank = shard.rank;
    cand.replicated = (shard.shard_flags & WB_SHARD_REPLICATED) != 0;
    if (dest.device >= 0 && shard.device_type == WB_DEVICE_CUDA) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      describe_tensor(seg, s, 0, &info);
      cand.on_dest_gpu = memcmp(info.device_uuid, dest_uuid, sizeof(dest_uuid)) == 0;
    }
    candidates.push_back(cand);
    chain.push_back(s);
    s = shard.next_shard.load(std::memory_order_acquire);
  }
  for (uint32_t k : plan::choose_sources(candidates)) {
    plan::Source s;
    s.box = candidates[k].box;
    memcpy(s.strides, seg.tensor(chain[k]).strides, sizeof(s.strides));
    slots->push_back(chain[k]);
    sources->push_back(s);
  }
  return WB_OK;
}

uint32_t source_index(Compiler *c, uint32_t slot) {
  auto [it, added] = c->source_of_slot.try_emplace(slot, uint32_t(c->plan->sources.size()));
  if (added) c->plan->sources.push_back(slot);
  return it->second;
}

// The registry slot of part j's tensor.
int find_part(Compiler *c, uint32_t i, uint32_t j, const wb_slice_part &part, uint32_t *slot) {
  if (part.name == nullptr) return fail(WB_E_INVAL, "dests[%u] part %u: name is NULL", i, j);
  uint32_t position;
  if (c->topic->tensors.find(part.name, slot, &position) != WB_OK) {
    return fail(WB_E_NOT_FOUND, "dests[%u] part %u ('%s'): topic '%s' has no such tensor", i, j, part.name,
                c->topic->entry->name);
  }
  return WB_OK;
}

// Part j of dests[i], whose elements start at concat_offset along concat_dim: its copies and pad fills, of
// src_dtype elements.
int compile_part(Compiler *c, uint32_t i, uint32_t j, const wb_slice_part &part, const wb_slice_dest &dest,
                 int32_t src_dtype, plan::Target *target, PlanDest *out) {
  uint32_t slot;
  if (int rc = find_part(c, i, j, part, &slot); rc != WB_OK) return rc;
  const shm::Tensor &tensor = c->topic->client->seg.tensor(slot);
  if (int rc = check_part(i, j, part, tensor, dest, src_dtype); rc != WB_OK) return rc;
  std::vector<uint32_t> slots;
  std::vector<plan::Source> sources;
  if (int rc = shards_of(c, slot, dest, &slots, &sources); rc != WB_OK) {
    return fail(rc, "dests[%u] part %u ('%s'): %s", i, j, part.name, wb_last_error());
  }
  region::Box box;
  box.ndim = part.ndim;
  memcpy(box.offset, part.offset, sizeof(box.offset));
  memcpy(box.extent, part.extent, sizeof(box.extent));
  size_t first = out->copies.size();
  uint64_t copied = plan::part_copies(box, *target, sources, &out->copies);
  if (copied != region::volume(box)) {
    return fail(WB_E_STATE, "dests[%u] part %u ('%s'): the shards cover %llu of the %llu elements of region %s", i, j,
                part.name, (unsigned long long)copied, (unsigned long long)region::volume(box),
                region::format(box).c_str());
  }
  for (size_t k = first; k < out->copies.size(); ++k) {
    out->copies[k].source = source_index(c, slots[out->copies[k].source]);
  }
  plan::pad_fills(box, part.pad, *target, &out->fills);
  target->concat_offset += part.extent[dest.concat_dim] + part.pad;
  return WB_OK;
}

// Where a converting destination's sources are: all in host memory for a host destination, all on its GPU for
// a GPU one (whose GPU must run the conversion kernel).
int check_conversion_sources(Compiler *c, uint32_t i, const wb_slice_dest &dest, const PlanDest &out) {
  const shm::Segment &seg = c->topic->client->seg;
  uint8_t dest_uuid[16] = {};
  if (dest.device >= 0) {
    if (int rc = wb_cuda_device_uuid(dest.device, dest_uuid); rc != WB_OK) return rc;
    if (int rc = cuda::convert_kernel_available(dest.device); rc != WB_OK) {
      return fail(rc, "dests[%u]: %s", i, wb_last_error());
    }
  }
  for (const wb_convert_rect &r : out.rects) {
    const uint32_t slot = c->plan->sources[r.source];
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    describe_tensor(seg, slot, 0, &info);
    const bool on_gpu = info.device_type == WB_DEVICE_CUDA;
    if (dest.device < 0 ? !on_gpu : on_gpu && memcmp(info.device_uuid, dest_uuid, sizeof(dest_uuid)) == 0) continue;
    return fail(WB_E_NO_CUDA, "dests[%u]: shard '%s' is %s, and a conversion into %s reads shards %s", i,
                seg.tensor(slot).name, on_gpu ? "on a GPU" : "in host memory",
                dest.device < 0 ? "host memory" : "a GPU", dest.device < 0 ? "in host memory" : "on that GPU");
  }
  return WB_OK;
}

// A converting destination: its view and scales checked, its copies (in elements) made rectangles, its fills
// made bytes of its dtype.
int finish_conversion(Compiler *c, uint32_t i, const wb_slice_dest &dest, int32_t src_dtype, PlanDest *out) {
  convert::Request request{src_dtype,      dest.dtype, dest.scale_layout, dest.block_rows,
                           dest.block_cols, dest.scale, dest.scale_bytes};
  int rc = convert::describe(request, dest.ndim, dest.shape, dest.dst, dest.dst_bytes, &out->convert);
  if (rc != WB_OK) return fail(rc, "dests[%u]: %s", i, wb_last_error());
  for (const plan::RowCopy &copy : out->copies) convert::rects_of_copy(copy, out->convert, copy.source, &out->rects);
  out->copies.clear();
  const uint64_t es = wb_dtype_size(dest.dtype);
  for (plan::ZeroFill &f : out->fills) f.dst_offset *= es, f.row_bytes *= es, f.pitch *= es;
  out->converts = true;
  return check_conversion_sources(c, i, dest, *out);
}

int compile_dest(Compiler *c, uint32_t i, const wb_slice_dest &dest, const wb_slice_part *parts, uint32_t part_count) {
  if (int rc = check_dest(c, i, dest, part_count); rc != WB_OK) return rc;
  if (wb_dtype_size(dest.dtype) == 0) return fail(WB_E_DTYPE, "dests[%u]: unknown dtype %d", i, dest.dtype);
  // The parts' dtype, the first's: the others are checked against it.
  uint32_t first_slot;
  if (int rc = find_part(c, i, dest.first_part, element_at(parts, dest.first_part), &first_slot); rc != WB_OK) {
    return rc;
  }
  const int32_t src_dtype = c->topic->client->seg.tensor(first_slot).dtype;
  const bool converts = convert::converts({src_dtype, dest.dtype, dest.scale_layout, 0, 0, nullptr, 0});
  plan::Target target;
  target.concat_dim = dest.concat_dim;
  // A converting destination is compiled in elements, which convert.hpp turns into its rectangles.
  target.element_bytes = converts ? 1 : wb_dtype_size(dest.dtype);
  if (int rc = dest_strides(i, dest, target.strides); rc != WB_OK) return rc;
  if (converts) {
    int64_t contiguous[WB_MAX_DIMS] = {};
    geometry::contiguous_strides(dest.ndim, dest.shape, contiguous);
    for (uint32_t d = 0; d < dest.ndim; ++d) {
      if (dest.shape[d] > 1 && target.strides[d] != contiguous[d]) {
        return fail(WB_E_SHAPE, "dests[%u]: strides %s: a converting destination is contiguous", i,
                    region::format_shape(dest.ndim, dest.strides).c_str());
      }
    }
  }
  PlanDest out;
  out.dst = static_cast<char *>(dest.dst);
  out.device = dest.device;
  for (uint32_t j = dest.first_part; j < dest.first_part + dest.part_count; ++j) {
    if (int rc = compile_part(c, i, j, element_at(parts, j), dest, src_dtype, &target, &out); rc != WB_OK) return rc;
  }
  if (target.concat_offset != dest.shape[dest.concat_dim]) {
    return fail(WB_E_SHAPE, "dests[%u]: shape %s is not its parts' concatenation: they make %lld along concat_dim %u",
                i, region::format_shape(dest.ndim, dest.shape).c_str(), (long long)target.concat_offset,
                dest.concat_dim);
  }
  uint64_t span = 0;
  int rc = geometry::strided_span(dest.dtype, dest.ndim, dest.shape, target.strides, &span);
  if (rc != WB_OK) return fail(rc, "dests[%u]: %s", i, wb_last_error());
  if (dest.dst_bytes < span) {
    return fail(WB_E_SIZE, "dests[%u]: shape %s spans %llu bytes, but dst_bytes is %llu", i,
                region::format_shape(dest.ndim, dest.shape).c_str(), (unsigned long long)span,
                (unsigned long long)dest.dst_bytes);
  }
  if (converts && (rc = finish_conversion(c, i, dest, src_dtype, &out)) != WB_OK) return rc;
  c->dests.push_back(std::move(out));
  return WB_OK;
}

// The destinations' copies and fills sorted by where they run (host ones here, the rest on a GPU), and counted.
void finish_plan(wb_plan *plan, const std::vector<PlanDest> &dests) {
  const shm::Segment &seg = plan->topic->client->seg;
  for (uint32_t slot : plan->sources) {
    plan->source_on_gpu.push_back(seg.tensor(slot).device_type == WB_DEVICE_CUDA);
    plan->source_root.push_back(seg.tensor(slot).root);
    bool shard = seg.tensor(slot).role == uint32_t(shm::TensorRole::kShard);
    plan->source_rank.push_back(shard ? seg.tensor(slot).rank : shm::kNone);
  }
  plan->replicas = topic_replicas(plan->topic);
  plan->source_ordinal.assign(plan->sources.size(), -1);
  plan->info.dests = uint32_t(dests.size());
  for (const PlanDest &d : dests) {
    if (d.device >= 0 && plan->gpu_ordinal < 0) plan->gpu_ordinal = d.device;
    if (d.converts) {
      Conversions &to = d.device < 0 ? plan->host_conversions : plan->gpu_conversions;
      wb_convert_dest dest = d.convert;
      dest.first_rect = uint32_t(to.rects.size());
      dest.rect_count = uint32_t(d.rects.size());
      to.dests.push_back(dest);
      to.rects.insert(to.rects.end(), d.rects.begin(), d.rects.end());
      plan->info.copies += uint32_t(d.rects.size());
      for (const wb_convert_rect &r : d.rects) {
        plan->info.copies_2d += r.rows > 1;
        plan->info.bytes += r.rows * r.cols * convert::element_size(dest.dst_dtype);
      }
    }
    for (const plan::RowCopy &r : d.copies) {
      plan->info.copies++;
      plan->info.copies_2d += r.rows > 1;
      plan->info.bytes += r.row_bytes * r.rows;
      if (d.device < 0 && !plan->source_on_gpu[r.source]) {
        plan->host_copies.push_back({r, d.dst});
        continue;
      }
      cuda::PlanCopy c;
      c.source = r.source;
      c.src_offset = r.src_offset;
      c.dst = d.dst + r.dst_offset;
      c.row_bytes = r.row_bytes;
      c.rows = r.rows;
      c.src_pitch = r.src_pitch;
      c.dst_pitch = r.dst_pitch;
      c.dst_on_gpu = d.device >= 0;
      plan->gpu_copies.push_back(c);
    }
    for (const plan::ZeroFill &f : d.fills) {
      plan->info.pad_bytes += f.row_bytes * f.rows;
      if (d.device < 0) {
        plan->host_fills.push_back({f, d.dst});
      } else {
        plan->gpu_fills.push_back({d.dst + f.dst_offset, f.row_bytes, f.rows, f.pitch});
      }
    }
  }
}

// ---- running ----------------------------------------------------------------------------------------------------

// Where source k's bytes are in replica `replica` (and, the first time, on which GPU of this process).
int resolve_source(wb_plan *plan, uint32_t k, uint32_t replica, cuda::PlanSource *out) {
  char *data;
  int rc = replica_data(plan->topic->client, plan->sources[k], replica, &data);
  if (rc != WB_OK) return rc;
  out->data = data;
  out->on_gpu = plan->source_on_gpu[k];
  if (out->on_gpu && plan->source_ordinal[k] < 0) {
    const shm::Segment &seg = plan->topic->client->seg;
    const shm::Tensor &t = seg.tensor(plan->sources[k]);
    const shm::Allocation &a = seg.allocation(seg.tensor(t.root).allocation);
    if ((rc = cuda::ordinal_of(a.device_uuid, &plan->source_ordinal[k])) != WB_OK) {
      return fail(rc, "tensor '%s': %s", t.name, wb_last_error());
    }
  }
  out->ordinal = plan->source_ordinal[k];
  return WB_OK;
}

// Where source k's bytes are in replica `replica`, as kept from the runs (found_epoch's), looked up the first time.
int found_source(wb_plan *plan, uint32_t k, uint32_t replica, cuda::PlanSource *out) {
  size_t at = size_t(k) * plan->replicas + replica;
  if (!plan->found_known[at]) {
    if (int rc = resolve_source(plan, k, replica, &plan->found[at]); rc != WB_OK) return rc;
    plan->found_known[at] = 1;
  }
  *out = plan->found[at];
  return WB_OK;
}

void host_copy(const plan::RowCopy &r, const char *src, char *dst) {
  for (uint64_t row = 0; row < r.rows; ++row) {
    memcpy(dst + r.dst_offset + row * r.dst_pitch, src + r.src_offset + row * r.src_pitch, r.row_bytes);
  }
}

void host_fill(const plan::ZeroFill &f, char *dst) {
  for (uint64_t row = 0; row < f.rows; ++row) memset(dst + f.dst_offset + row * f.pitch, 0, f.row_bytes);
}

// The host's conversions, with the sources they read looked up.
int run_host_conversions(const Conversions &conversions, cuda::PlanSources *sources) {
  if (conversions.empty()) return WB_OK;
  std::vector<const char *> data(sources->count(), nullptr);
  for (const wb_convert_rect &r : conversions.rects) {
    const cuda::PlanSource *src;
    if (int rc = sources->get(r.source, &src); rc != WB_OK) return rc;
    data[r.source] = src->data;
  }
  for (const wb_convert_dest &d : conversions.dests) convert::run_host(d, conversions.rects.data(), data.data());
  return WB_OK;
}

int run_with(wb_plan *plan, wb_snapshot *snapshot, void *stream, cuda::PlanSources &sources) {
  int rc;
  // Host bytes written by GPU work (a version published on a stream) are read once that work is done.
  if ((!plan->host_copies.empty() || !plan->host_conversions.empty()) &&
      (snapshot->record_flags & shm::kRecordOnStream) && (rc = wb_snapshot_synchronize(snapshot, -1)) != WB_OK) {
    return rc;
  }
  for (const HostCopy &h : plan->host_copies) {
    const cuda::PlanSource *src;
    if ((rc = sources.get(h.copy.source, &src)) != WB_OK) return rc;
    host_copy(h.copy, src->data, h.dst);
  }
  for (const HostFill &h : plan->host_fills) host_fill(h.fill, h.dst);
  if ((rc = run_host_conversions(plan->host_conversions, &sources)) != WB_OK) return rc;
  if (plan->gpu_copies.empty() && plan->gpu_fills.empty() && plan->gpu_conversions.empty()) return WB_OK;
  int ordinal = plan->gpu_ordinal;
  if (ordinal < 0) {  // host destinations only: a GPU source's
    const cuda::PlanSource *src;
    if ((rc = sources.get(plan->gpu_copies[0].source, &src)) != WB_OK) return rc;
    ordinal = src->ordinal;
  }
  if ((!plan->gpu_copies.empty() || !plan->gpu_fills.empty()) &&
      (rc = cuda::run_plan_on_stream(snapshot, &plan->gpu, plan->gpu_copies, plan->gpu_fills, &sources, ordinal,
                                     stream)) != WB_OK) {
    return rc;
  }
  if (plan->gpu_conversions.empty()) return WB_OK;
  return cuda::run_convert_on_stream(snapshot, &plan->convert_gpu, plan->gpu_conversions.dests,
                                     plan->gpu_conversions.rects, &sources, ordinal, stream);
}

// For each rank of a sharded R >= 2 topic, the replica that its word says holds all of its shards' bytes for
// `version`, or kNone (read each shard's words).
std::vector<uint32_t> rank_replicas(const wb_plan *plan, uint64_t version) {
  const wb_topic *topic = plan->topic;
  if (plan->replicas == 1 || topic->entry->ranks == 0) return {};
  std::vector<uint32_t> out(topic->entry->ranks, shm::kNone);
  for (uint32_t k = 0; k < out.size(); ++k) {
    const shm::Rank *rank = topic_state::rank_entry(topic->client->seg, *topic->entry, k);
    if (rank == nullptr) break;
    uint32_t replica = rank_replica_of(rank->replica_of_version[version % shm::kRankVersionsKept].load(
                                           std::memory_order_acquire), version);
    if (replica < plan->replicas) out[k] = replica;  // else a scribbled word: the shards' own words decide
  }
  return out;
}

// Looking a source up reads its tensor's replica words (R >= 2), which the publisher has just written, and the
// first time for each replica its import or mapping: a few hundred nanoseconds a source on a woken reader,
// before the GPU starts. Runs keep what they found for as long as the allocations keep their states, so that a
// run after the first reads only the replica words (R = 1: not even those), and of a sharded topic's shards
// one word per rank when the rank wrote all of its shards into one replica, as full versions do.
int run_plan(wb_plan *plan, wb_snapshot *snapshot, void *stream) {
  uint32_t replicas = plan->replicas;
  uint64_t epoch = allocations_epoch(plan->topic->client);
  if (epoch != plan->found_epoch) {
    plan->found.assign(plan->sources.size() * replicas, cuda::PlanSource{});
    plan->found_known.assign(plan->found.size(), 0);
    plan->found_epoch = epoch;
  }
  uint64_t version = snapshot->version;
  std::vector<uint32_t> of_rank = rank_replicas(plan, version);
  cuda::PlanSources sources(plan->sources.size(), [&](uint32_t k, cuda::PlanSource *out) {
    uint32_t rank = plan->source_rank[k], replica = rank < of_rank.size() ? of_rank[rank] : shm::kNone;
    int rc = WB_OK;
    if (replica == shm::kNone) rc = version_replica(snapshot, replicas, plan->source_root[k], &replica);
    if (rc != WB_OK) return rc;
    return found_source(plan, k, replica, out);
  });
  return run_with(plan, snapshot, stream, sources);
}

// R = 2: the replica version `version` will be written into, as its begin picks it when no older version is
// leased: the one the latest is not in. kNone when that is not known (a mixed latest, none yet).
uint32_t next_replica(const wb_plan *plan, uint64_t version) {
  const wb_topic *topic = plan->topic;
  const shm::Segment &seg = topic->client->seg;
  uint64_t latest = version - 1;
  uint32_t replica = shm::kNone;
  if (latest == 0) return shm::kNone;
  if (topic->entry->ranks == 0) {
    uint32_t all_in = seg.record(topic->slot, latest).replica.load(std::memory_order_acquire);
    replica = all_in == 0 ? shm::kNone : all_in - 1;
  } else if (const shm::Rank *rank = topic_state::rank_entry(seg, *topic->entry, 0); rank != nullptr) {
    replica = rank_replica_of(rank->replica_of_version[latest % shm::kRankVersionsKept].load(std::memory_order_acquire),
                              latest);
  }
  return replica < 2 ? 1 - replica : shm::kNone;
}

}  // namespace

wb_topic *plan_topic(const wb_plan *plan) { return plan->topic; }

int arm_plan(wb_plan *plan, uint64_t version, void *stream, cuda::GpuArm **out) {
  *out = nullptr;
  uint64_t epoch = allocations_epoch(plan->topic->client);
  if (!plan->host_copies.empty() || !plan->host_fills.empty() || !plan->host_conversions.empty() ||
      !plan->gpu_conversions.empty() || plan->gpu_copies.empty() || plan->gpu == nullptr || plan->gpu_ordinal < 0 ||
      plan->replicas > 2 || epoch != plan->found_epoch) {
    return WB_OK;
  }
  uint32_t replica = plan->replicas == 1 ? shm::kNone : next_replica(plan, version);
  if (plan->replicas == 2 && replica == shm::kNone) return WB_OK;
  uint32_t in = replica == shm::kNone ? 0 : replica;
  cuda::PlanSources sources(plan->sources.size(),
                            [&](uint32_t k, cuda::PlanSource *found) { return found_source(plan, k, in, found); });
  return cuda::arm_plan_on_stream(plan->topic, plan->gpu, plan->gpu_fills, &sources, plan->gpu_ordinal, stream,
                                  cuda::ArmTarget{version, epoch, replica}, out);
}

void count_arm(wb_plan *plan, bool gpu) {
  plan->arms.fetch_add(1, std::memory_order_relaxed);
  if (gpu) plan->gpu_arms.fetch_add(1, std::memory_order_relaxed);
}

void count_claimed(wb_plan *plan) { plan->gpu_arms_claimed.fetch_add(1, std::memory_order_relaxed); }

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_plan_create(wb_topic *topic, const wb_slice_dest *dests, uint32_t count,
                                     const wb_slice_part *parts, uint32_t part_count, wb_plan **out) try {
  if (topic == nullptr || dests == nullptr || parts == nullptr || out == nullptr || count == 0 || part_count == 0) {
    return fail(WB_E_INVAL, "topic, dests, parts or out is NULL, or count or part_count is 0");
  }
  int rc = check_struct_size(dests[0].struct_size, sizeof(wb_slice_dest), "wb_slice_dest");
  if (rc != WB_OK || (rc = check_struct_size(parts[0].struct_size, sizeof(wb_slice_part), "wb_slice_part")) != WB_OK ||
      (rc = check_layout(topic)) != WB_OK) {
    return rc;
  }
  auto plan = std::make_unique<wb_plan>();
  plan->topic = topic;
  Compiler compiler{topic, plan.get(), {}, -1, {}};
  for (uint32_t i = 0; i < count; ++i) {
    if ((rc = compile_dest(&compiler, i, element_at(dests, i), parts, part_count)) != WB_OK) return rc;
  }
  finish_plan(plan.get(), compiler.dests);
  *out = plan.release();
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_plan_run(wb_plan *plan, wb_snapshot *snapshot, void *stream) try {
  if (plan == nullptr || snapshot == nullptr) return fail(WB_E_INVAL, "plan or snapshot is NULL");
  // Another handle of the same topic, of the same client, reads the same registry entries.
  if (snapshot->topic == nullptr || snapshot->topic->client != plan->topic->client ||
      snapshot->topic->slot != plan->topic->slot) {
    const char *of = snapshot->topic == nullptr ? "(a detached client)" : snapshot->topic->entry->name;
    return fail(WB_E_INVAL, "the snapshot is of topic '%s', the plan of topic '%s': acquire a snapshot of the plan's "
                "topic handle", of, plan->topic->entry->name);
  }
  return run_plan(plan, snapshot, stream);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_plan_get_info(const wb_plan *plan, wb_plan_info *out) try {
  if (plan == nullptr || out == nullptr) return fail(WB_E_INVAL, "plan or out is NULL");
  if (int rc = check_struct_size(out->struct_size, sizeof(wb_plan_info), "wb_plan_info"); rc != WB_OK) return rc;
  uint32_t size = out->struct_size;
  *out = plan->info;
  out->struct_size = size;
  out->arms = plan->arms.load(std::memory_order_relaxed);
  out->gpu_arms = plan->gpu_arms.load(std::memory_order_relaxed);
  out->gpu_arms_claimed = plan->gpu_arms_claimed.load(std::memory_order_relaxed);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API void wb_plan_destroy(wb_plan *plan) { delete plan; }
