// The registry's side of sharded topics' layout (docs/sharded-models.md, "Registration", "Seal / gaps"): checking
// a rank's shards against the other ranks' (region, dtype, logical shape, overlap), making their entries and
// chaining them from their logical entry, sealing a rank (the coverage check) and releasing a rank's publisher.
// Called by registry.cpp, adopt.cpp and registry_cuda.cpp; calls registry_tables.cpp and the versions
// (commit.cpp), none of which calls it.
#include <algorithm>
#include <cstring>

#include "error.hpp"
#include "futex.hpp"
#include "geometry.hpp"
#include "registry.hpp"

namespace wb::broker {

namespace {

// The messages list at most this many shards of a tensor, then "...".
constexpr size_t kBoxesNamed = 8;

region::Box box_of(const NewTensor &spec) {
  region::Box box;
  box.ndim = uint32_t(spec.shape.size());
  std::copy(spec.shard.offset.begin(), spec.shard.offset.end(), box.offset);
  std::copy(spec.shape.begin(), spec.shape.end(), box.extent);
  return box;
}

bool same_shape(const std::vector<int64_t> &shape, uint32_t ndim, const int64_t *other) {
  return shape.size() == ndim && std::equal(shape.begin(), shape.end(), other);
}

}  // namespace

region::Box Registry::shard_box(uint32_t slot) const {
  const shm::Tensor &e = seg_.tensor(slot);
  region::Box box;
  box.ndim = e.ndim;
  std::copy(e.region_offset, e.region_offset + e.ndim, box.offset);
  std::copy(e.shape, e.shape + e.ndim, box.extent);
  return box;
}

// Calls f(slot) for each shard chained from logical entry `logical`, in order; stops early when f returns false.
// Bounded by shard_count and the table's size, whatever the segment holds.
template <typename F>
void Registry::for_each_shard(uint32_t logical, F &&f) const {
  const shm::Tensor &l = seg_.tensor(logical);
  uint32_t count = l.shard_count.load(std::memory_order_acquire);
  uint32_t end = seg_.header().tensor_count.load();
  uint32_t s = l.first_shard;
  for (uint32_t n = 0; n < count && s < end; ++n, s = seg_.tensor(s).next_shard.load(std::memory_order_acquire)) {
    if (!f(s)) return;
  }
}

int Registry::check_new_shards(uint32_t topic, uint32_t rank, const std::vector<NewTensor> &specs,
                               ShardPlan *plan) const {
  plan->is_new.assign(specs.size(), false);
  plan->new_logical.assign(specs.size(), false);
  plan->entries = 0;
  plan->stored = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    bool is_new = false, new_logical = false;
    if (int rc = check_shard(topic, rank, specs, i, &is_new, &new_logical); rc != WB_OK) return rc;
    plan->is_new[i] = is_new;
    plan->new_logical[i] = new_logical;
    plan->stored += is_new ? 1 : 0;
    plan->entries += (is_new ? 1 : 0) + (new_logical ? 1 : 0);
  }
  if (seg_.header().tensor_count.load() + plan->entries > seg_.caps().max_tensors) {
    return fail(WB_E_NOSPC, "the tensor table is full (%u entries; see weightbusd --max-tensors)", seg_.caps().max_tensors);
  }
  return WB_OK;
}

// Checks specs[i] (a shard of rank `rank`) against its logical entry, the shards of other ranks and of this one,
// and the specs before it in the request.
int Registry::check_shard(uint32_t topic, uint32_t rank, const std::vector<NewTensor> &specs, size_t i, bool *is_new,
                          bool *new_logical) const {
  const shm::Topic &t = seg_.topic(topic);
  const NewTensor &spec = specs[i];
  const char *name = spec.name.c_str();
  int rc = geometry::check_name(spec.name.data(), spec.name.size(), "tensor");
  uint64_t nbytes;
  if (rc == WB_OK) rc = geometry::contiguous_bytes(spec.dtype, uint32_t(spec.shape.size()), spec.shape.data(), &nbytes);
  if (rc != WB_OK) return fail(rc, "tensor '%.255s': %s", name, wb_last_error());
  if (!spec.shard.present) {
    return fail(WB_E_INVAL, "topic '%s' is sharded: tensor '%s' needs its region in the logical tensor (wb_shard_alloc)",
                t.name, name);
  }
  const std::vector<int64_t> &logical_shape = spec.shard.logical_shape;
  uint32_t ndim = uint32_t(spec.shape.size());
  if (logical_shape.size() != ndim || spec.shard.offset.size() != ndim) {
    return fail(WB_E_SHAPE, "tensor '%s' rank %u: its extent has %u dimensions, its logical shape %zu and its offset %zu",
                name, rank, ndim, logical_shape.size(), spec.shard.offset.size());
  }
  if ((rc = geometry::contiguous_bytes(spec.dtype, ndim, logical_shape.data(), &nbytes)) != WB_OK) {
    return fail(rc, "tensor '%s', its logical shape: %s", name, wb_last_error());
  }
  if ((spec.shard.flags & ~WB_SHARD_REPLICATED) != 0) {
    return fail(WB_E_INVAL, "tensor '%s': unknown shard flags 0x%x", name, spec.shard.flags);
  }
  region::Box box = box_of(spec);
  if (!region::inside(box, logical_shape.data())) {
    return fail(WB_E_SHAPE, "tensor '%s' rank %u: region %s lies outside its logical shape %s", name, rank,
                region::format(box).c_str(), region::format_shape(ndim, logical_shape.data()).c_str());
  }
  bool first_in_request = true;
  for (size_t j = 0; j < i; ++j) {
    const NewTensor &other = specs[j];
    if (other.name != spec.name) continue;
    first_in_request = false;
    if (other.dtype != spec.dtype || other.shard.logical_shape != logical_shape) {
      return fail(WB_E_LAYOUT, "tensor '%s': rank %u registers %s %s and %s %s in one request", name, rank,
                  wb_dtype_name(spec.dtype), region::format_shape(ndim, logical_shape.data()).c_str(),
                  wb_dtype_name(other.dtype),
                  region::format_shape(uint32_t(other.shard.logical_shape.size()), other.shard.logical_shape.data())
                      .c_str());
    }
    region::Box common;
    if (region::same(box, box_of(other))) {
      return fail(WB_E_EXISTS, "tensor '%s': rank %u lists region %s twice in one request", name, rank,
                  region::format(box).c_str());
    }
    if (region::intersect(box, box_of(other), &common)) {
      return fail(WB_E_LAYOUT, "tensor '%s': rank %u's region %s overlaps its own %s in %s", name, rank,
                  region::format(box).c_str(), region::format(box_of(other)).c_str(), region::format(common).c_str());
    }
  }
  uint32_t logical;
  if (find_tensor(topic, spec.name, &logical) == WB_OK) {
    if ((rc = check_against_shards(logical, rank, spec, box, is_new)) != WB_OK || !*is_new) return rc;
  } else {
    *new_logical = first_in_request;
  }
  *is_new = true;
  if (t.layout_complete.load() != 0) {
    *new_logical = false;
    *is_new = false;
    return fail(WB_E_STATE, "model '%s' is sealed: cannot add shard '%s'", t.name, name);
  }
  return WB_OK;
}

// The shard `spec` (region `box`) of rank `rank` against logical entry `logical` and its shards: *is_new is false
// when the rank registered this box already (it keeps its storage).
int Registry::check_against_shards(uint32_t logical, uint32_t rank, const NewTensor &spec, const region::Box &box,
                                   bool *is_new) const {
  const shm::Tensor &l = seg_.tensor(logical);
  const char *name = spec.name.c_str();
  uint32_t ndim = uint32_t(spec.shape.size());
  if (l.dtype != spec.dtype || !same_shape(spec.shard.logical_shape, l.ndim, l.shape)) {
    uint32_t first = l.first_shard;
    return fail(WB_E_LAYOUT, "tensor '%s': rank %u registers %s %s but rank %u registered %s %s", name, rank,
                wb_dtype_name(spec.dtype), region::format_shape(ndim, spec.shard.logical_shape.data()).c_str(),
                first < seg_.header().tensor_count.load() ? seg_.tensor(first).rank : 0, wb_dtype_name(l.dtype),
                region::format_shape(l.ndim, l.shape).c_str());
  }
  int rc = WB_OK;
  *is_new = true;
  for_each_shard(logical, [&](uint32_t s) {
    const shm::Tensor &shard = seg_.tensor(s);
    region::Box theirs = shard_box(s);
    if (shard.rank == rank && region::same(box, theirs)) {
      *is_new = false;
      return true;  // registered again: the other shards were checked when it was first
    }
    region::Box common;
    if (!region::intersect(box, theirs, &common)) return true;
    bool replicated = (spec.shard.flags & WB_SHARD_REPLICATED) && (shard.shard_flags & WB_SHARD_REPLICATED);
    if (replicated && region::same(box, theirs) && shard.rank != rank) return true;
    if (shard.rank == rank) {
      rc = fail(WB_E_LAYOUT, "tensor '%s': rank %u's region %s overlaps its own %s in %s", name, rank,
                region::format(box).c_str(), region::format(theirs).c_str(), region::format(common).c_str());
    } else {
      rc = fail(WB_E_LAYOUT, "tensor '%s': rank %u's region %s overlaps rank %u's %s in %s", name, rank,
                region::format(box).c_str(), shard.rank, region::format(theirs).c_str(),
                region::format(common).c_str());
    }
    return false;
  });
  if (rc != WB_OK) *is_new = false;
  return rc;
}

void Registry::enter_logical_names(uint32_t topic, const std::vector<NewTensor> &specs, const ShardPlan &plan) {
  uint32_t slot = seg_.header().tensor_count.load();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (plan.new_logical[i]) tensors_by_name_[topic].emplace(specs[i].name, slot++);
    if (plan.is_new[i]) ++slot;
  }
}

void Registry::append_shards(uint32_t topic, uint32_t rank, const std::vector<NewTensor> &specs, const ShardPlan &plan,
                             std::vector<TensorPlacement> &placements) {
  shm::Rank &entry = seg_.rank(seg_.topic(topic).first_rank + rank);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!plan.is_new[i]) continue;
    const NewTensor &spec = specs[i];
    if (plan.new_logical[i]) {
      append_tensor(topic, spec.name, spec.dtype, spec.shard.logical_shape, {},
                    TensorPlacement{.allocation = shm::kNone, .role = shm::TensorRole::kLogical});
    }
    uint32_t logical = 0;
    find_tensor(topic, spec.name, &logical);  // entered by enter_logical_names or before
    uint32_t index = 0;
    for_each_shard(logical, [&](uint32_t s) {
      index += seg_.tensor(s).rank == rank ? 1 : 0;
      return true;
    });
    TensorPlacement &p = placements[i];
    p.role = shm::TensorRole::kShard;
    p.rank = rank;
    p.logical = logical;
    p.shard_flags = spec.shard.flags;
    p.shard_index = index;
    p.region_offset = spec.shard.offset.data();
    chain_shard(logical, append_tensor(topic, spec.name, spec.dtype, spec.shape, {}, p));
    entry.shards.fetch_add(1);
  }
}

void Registry::chain_shard(uint32_t logical, uint32_t slot) {
  shm::Tensor &l = seg_.tensor(logical);
  uint32_t count = l.shard_count.load();
  if (count == 0) {
    l.first_shard = slot;
  } else {
    uint32_t last = l.first_shard;
    for_each_shard(logical, [&](uint32_t s) {
      last = s;
      return true;
    });
    seg_.tensor(last).next_shard.store(slot, std::memory_order_release);
  }
  l.shard_count.store(count + 1, std::memory_order_release);
}

// Every logical tensor of the topic must be covered by its shards: WB_E_LAYOUT naming the first gap and the
// shards there are (at most kBoxesNamed of them).
int Registry::check_coverage(uint32_t topic) const {
  const shm::Topic &t = seg_.topic(topic);
  uint32_t slot = t.first_tensor;
  uint32_t end = seg_.header().tensor_count.load();
  std::vector<region::Box> boxes;
  std::vector<uint32_t> ranks;
  for (uint32_t n = 0; n < t.tensor_count.load() && slot < end; ++n, slot = seg_.tensor(slot).next.load()) {
    const shm::Tensor &l = seg_.tensor(slot);
    if (l.role != uint32_t(shm::TensorRole::kLogical)) continue;
    boxes.clear();
    ranks.clear();
    for_each_shard(slot, [&](uint32_t s) {
      boxes.push_back(shard_box(s));
      ranks.push_back(seg_.tensor(s).rank);
      return true;
    });
    region::Box gap;
    if (!region::first_gap(l.ndim, l.shape, boxes, &gap)) continue;
    std::string shards;
    for (size_t k = 0; k < boxes.size() && k < kBoxesNamed; ++k) {
      shards += (k == 0 ? "" : ", ") + ("rank " + std::to_string(ranks[k])) + " " + region::format(boxes[k]);
    }
    if (boxes.size() > kBoxesNamed) shards += ", ...";
    return fail(WB_E_LAYOUT, "model '%s': tensor '%s' region %s is covered by no rank (%s)", t.name, l.name,
                region::format(gap).c_str(), shards.c_str());
  }
  return WB_OK;
}

int Registry::seal_rank(uint32_t topic, uint32_t client) {
  shm::Topic &t = seg_.topic(topic);
  uint32_t rank = rank_of(topic, client);
  if (rank == shm::kNone) {
    if (t.ranks == 0) return fail(WB_E_INVAL, "topic '%s' is not sharded: it has no ranks to seal", t.name);
    return fail(WB_E_ROLE, "only a rank's publisher may seal its layout, and this client publishes no rank of '%s'",
                t.name);
  }
  shm::Rank &entry = seg_.rank(t.first_rank + rank);
  if (entry.sealed.load() != 0) return WB_OK;
  bool last = t.sealed_ranks.load() + 1 == t.ranks;
  if (last) {
    if (int rc = check_coverage(topic); rc != WB_OK) return rc;
  }
  entry.sealed.store(1, std::memory_order_release);
  t.sealed_ranks.fetch_add(1, std::memory_order_release);
  if (!last) return WB_OK;
  t.layout_complete.store(1, std::memory_order_release);
  t.layout_gen.fetch_add(1, std::memory_order_release);
  bump_and_wake(&t.version_seq, &t.version_waiters);  // begins waiting for the layout go on
  return WB_OK;
}

uint32_t Registry::release_publisher(uint32_t topic, uint32_t client) {
  const shm::Topic &t = seg_.topic(topic);
  if (t.ranks == 0) return release_publisher(topic);
  uint32_t rank = rank_of(topic, client);
  if (rank == shm::kNone) return 0;
  release_rank_publisher(topic, rank);
  return seg_.rank(t.first_rank + rank).dirty_tensors.load();
}

void Registry::release_rank_publisher(uint32_t topic, uint32_t rank) {
  shm::Rank &entry = seg_.rank(seg_.topic(topic).first_rank + rank);
  uint32_t client = entry.publisher.load();
  if (client == 0) return;
  end_rank_version(topic, rank);
  entry.publisher.store(0, std::memory_order_release);
  entry.publisher_pid.store(0);
  seg_.client(client - 1).topics_published.fetch_sub(1);
  commit_if_complete(topic);
}

}  // namespace wb::broker
