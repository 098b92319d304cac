// Plans: a reader's destinations resolved once into region copies from a topic's shards, run every version.
// CONTRACT STUB (issue 19): replaced by the implementation.
#include "error.hpp"
#include "weightbus/weightbus.h"

extern "C" {

WB_API int wb_plan_create(wb_topic *, const wb_slice_dest *, uint32_t, const wb_slice_part *, uint32_t, wb_plan **) {
  return wb::fail(WB_E_STATE, "wb_plan_create: not built yet");
}
WB_API int wb_plan_run(wb_plan *, wb_snapshot *, void *) { return wb::fail(WB_E_STATE, "wb_plan_run: not built yet"); }
WB_API int wb_plan_get_info(const wb_plan *, wb_plan_info *) {
  return wb::fail(WB_E_STATE, "wb_plan_get_info: not built yet");
}
WB_API void wb_plan_destroy(wb_plan *) {}

}  // extern "C"
