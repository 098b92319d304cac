// Sharded topics, versions: a rank's shard in its update, a reader's shard in its snapshot.
// CONTRACT STUB (issue 19): replaced by the implementation.
#include "error.hpp"
#include "weightbus/weightbus.h"

extern "C" {

WB_API int wb_update_shard(wb_update *, const char *, uint32_t, wb_tensor_info *) {
  return wb::fail(WB_E_STATE, "wb_update_shard: not built yet");
}
WB_API int wb_snapshot_shard(wb_snapshot *, const char *, uint32_t, uint32_t, wb_tensor_info *) {
  return wb::fail(WB_E_STATE, "wb_snapshot_shard: not built yet");
}

}  // extern "C"
