// Sharded topics, the publishing side: creating or joining a topic as one of its ranks, registering that rank's
// shards, sealing its layout, and describing ranks (docs/sharded-models.md).
// CONTRACT STUB (issue 19): replaced by the implementation.
#include "error.hpp"
#include "weightbus/weightbus.h"

extern "C" {

WB_API int wb_topic_create_rank(wb_client *, const char *, const wb_rank_options *, wb_topic **) {
  return wb::fail(WB_E_STATE, "wb_topic_create_rank: not built yet");
}
WB_API int wb_shard_alloc(wb_topic *, const wb_shard_spec *, uint32_t) {
  return wb::fail(WB_E_STATE, "wb_shard_alloc: not built yet");
}
WB_API int wb_shard_alloc_cuda(wb_topic *, const wb_shard_spec *, uint32_t, int32_t) {
  return wb::fail(WB_E_STATE, "wb_shard_alloc_cuda: not built yet");
}
WB_API int wb_shard_register_cuda(wb_topic *, const wb_shard_spec *, void *const *, uint32_t) {
  return wb::fail(WB_E_STATE, "wb_shard_register_cuda: not built yet");
}
WB_API int wb_topic_seal_rank(wb_topic *, int64_t) { return wb::fail(WB_E_STATE, "wb_topic_seal_rank: not built yet"); }
WB_API int wb_topic_rank_info(wb_topic *, uint32_t, wb_rank_info *) {
  return wb::fail(WB_E_STATE, "wb_topic_rank_info: not built yet");
}

}  // extern "C"
