// Sharded topics, the publishing side: creating or joining a topic as one of its ranks, registering that rank's
// shards, sealing its layout, and describing ranks and shards (docs/sharded-models.md).
#include "client.hpp"
#include "error.hpp"
#include "geometry.hpp"
#include "shard_chain.hpp"
#include "struct_size.hpp"
#include "tensor_spec.hpp"
#include "topic.hpp"

namespace wb {

namespace {

void fill_rank_info(const shm::Rank &entry, wb_rank_info *out) {
  out->rank = entry.rank;
  out->pid = entry.publisher.load() != 0 ? entry.publisher_pid.load() : 0;
  out->sealed = entry.sealed.load();
  out->shards = entry.shards.load();
  out->dirty = entry.dirty_tensors.load();
  out->published = entry.published.load();
  out->writing = entry.writing_version.load();
  out->published_ns = entry.published_ns.load();
  out->begin_ns = entry.begin_ns.load();
  out->bytes = entry.bytes.load();
}

}  // namespace

int check_rank_publisher(wb_topic *topic, const char *what) {
  if (topic->entry->ranks == 0) {
    return fail(WB_E_INVAL, "topic '%s' is not sharded: %s", topic->entry->name, what);
  }
  if (!topic->publisher || topic->rank == shm::kNone) {
    return fail(WB_E_ROLE, "only a rank's publisher of '%s' may do this (%s)", topic->entry->name, what);
  }
  return WB_OK;
}

}  // namespace wb

using namespace wb;

extern "C" {

WB_API int wb_topic_create_rank(wb_client *client, const char *name, const wb_rank_options *opts,
                                wb_topic **out) try {
  if (client == nullptr || opts == nullptr || out == nullptr) return fail(WB_E_INVAL, "client, opts or out is NULL");
  *out = nullptr;
  int rc = check_struct_size(opts->struct_size, sizeof(wb_rank_options), "wb_rank_options");
  if (rc != WB_OK || (rc = geometry::check_name(name, "topic")) != WB_OK) return rc;
  if (opts->replicas < 1 || opts->replicas > WB_MAX_REPLICAS) {
    return fail(WB_E_INVAL, "replicas is %u, must be 1..%d", opts->replicas, WB_MAX_REPLICAS);
  }
  if (opts->ranks < 1 || opts->ranks > WB_MAX_RANKS) {
    return fail(WB_E_INVAL, "ranks is %u, must be 1..%d", opts->ranks, WB_MAX_RANKS);
  }
  if (opts->rank >= opts->ranks) {
    return fail(WB_E_INVAL, "rank %u of topic '%s' is out of range: it has ranks 0..%u", opts->rank, name,
                opts->ranks - 1);
  }
  return create_topic(client, name, opts->replicas, opts->ranks, opts->rank, out);
} catch (...) {
  return wb::abi_error(__func__);
}

WB_API int wb_shard_alloc(wb_topic *topic, const wb_shard_spec *specs, uint32_t count) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  std::vector<TensorRequest> requests;
  int rc = read_requests(specs, count, &requests);
  if (rc != WB_OK || (rc = check_rank_publisher(topic, "wb_shard_alloc registers a rank's shards")) != WB_OK) {
    return rc;
  }
  return alloc_host(topic, requests);
} catch (...) {
  return wb::abi_error(__func__);
}

WB_API int wb_topic_seal_rank(wb_topic *topic, int64_t timeout_ms) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  if (timeout_ms < -1) return fail(WB_E_INVAL, "timeout_ms is %lld: -1 (no limit) or >= 0", (long long)timeout_ms);
  int rc = check_rank_publisher(topic, "only a rank's layout is sealed");
  return rc == WB_OK ? seal_rank(topic) : rc;
} catch (...) {
  return wb::abi_error(__func__);
}

WB_API int wb_topic_rank_info(wb_topic *topic, uint32_t rank, wb_rank_info *out) try {
  if (topic == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_rank_info), "wb_rank_info");
  if (rc != WB_OK || (rc = check_topic_live(topic)) != WB_OK) return rc;
  const shm::Topic &t = *topic->entry;
  if (t.ranks == 0) return fail(WB_E_INVAL, "topic '%s' is not sharded: it has no ranks", t.name);
  if (rank >= t.ranks) {
    return fail(WB_E_INVAL, "rank %u of topic '%s' is out of range: it has ranks 0..%u", rank, t.name, t.ranks - 1);
  }
  const shm::Segment &seg = topic->client->seg;
  if (t.first_rank >= seg.caps().max_ranks || rank >= seg.caps().max_ranks - t.first_rank) {
    return fail(WB_E_PROTOCOL, "topic '%s' names rank entries %u.. beyond the rank table", t.name, t.first_rank);
  }
  fill_rank_info(seg.rank(t.first_rank + rank), out);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

WB_API int wb_topic_shard(wb_topic *topic, const char *name, uint32_t rank, uint32_t index, wb_shard_spec *out) try {
  if (topic == nullptr || name == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic, name or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_shard_spec), "wb_shard_spec");
  if (rc != WB_OK || (rc = check_topic_live(topic)) != WB_OK) return rc;
  if (topic->entry->ranks == 0) {
    return fail(WB_E_INVAL, "topic '%s' is not sharded: its tensors are wb_topic_tensor's", topic->entry->name);
  }
  uint32_t tensor_slot, position, shard_slot;
  const shm::Segment &seg = topic->client->seg;
  if ((rc = topic->tensors.find(name, &tensor_slot, &position)) != WB_OK ||
      (rc = find_shard(seg, tensor_slot, rank, index, &shard_slot)) != WB_OK) {
    return rc;
  }
  const shm::Tensor &logical = seg.tensor(tensor_slot), &shard = seg.tensor(shard_slot);
  out->dtype = shard.dtype;
  out->name = logical.name;
  out->ndim = shard.ndim;
  out->flags = shard.shard_flags;
  for (uint32_t d = 0; d < WB_MAX_DIMS; ++d) {
    const bool used = d < shard.ndim;
    out->logical_shape[d] = used ? logical.shape[d] : 0;
    out->offset[d] = used ? shard.region_offset[d] : 0;
    out->extent[d] = used ? shard.shape[d] : 0;
  }
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

}  // extern "C"
