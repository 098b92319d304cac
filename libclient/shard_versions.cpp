// Sharded topics, versions: a rank's shard in its update, a reader's shard in its snapshot. Both find the shard
// in its logical tensor's chain and then do what wb_update_tensor and wb_snapshot_tensor do for a tensor.
#include "client.hpp"
#include "error.hpp"
#include "shard_chain.hpp"
#include "snapshot.hpp"
#include "struct_size.hpp"
#include "topic.hpp"
#include "update.hpp"
#include "weightbus/weightbus.h"

using namespace wb;

extern "C" WB_API int wb_update_shard(wb_update *update, const char *name, uint32_t index, wb_tensor_info *out) try {
  if (update == nullptr || out == nullptr) return fail(WB_E_INVAL, "update or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t tensor_slot, position;
  if (rc != WB_OK || (rc = update->topic->tensors.find(name, &tensor_slot, &position)) != WB_OK) return rc;
  return write_tensor(update, tensor_slot, position, index, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_shard(wb_snapshot *snapshot, const char *name, uint32_t rank, uint32_t index,
                                        wb_tensor_info *out) try {
  if (snapshot == nullptr || out == nullptr) return fail(WB_E_INVAL, "snapshot or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  if (rc != WB_OK) return rc;
  wb_topic *topic = snapshot->topic;
  if (topic->entry->ranks == 0) {
    return fail(WB_E_INVAL, "topic '%s' is not sharded: use wb_snapshot_tensor", topic->entry->name);
  }
  uint32_t tensor_slot, position, shard_slot;
  if ((rc = topic->tensors.find(name, &tensor_slot, &position)) != WB_OK) return rc;
  if ((rc = find_shard(topic->client->seg, tensor_slot, rank, index, &shard_slot)) != WB_OK) return rc;
  return lookup_tensor(snapshot, shard_slot, position, out);
} catch (...) {
  return wb::abi_error(__func__);
}
