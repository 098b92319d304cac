// How frameworks split a dimension over ranks (wb_split, wb_split_vocab, wb_parts_qkv, wb_parts_merged).
// CONTRACT STUB (issue 19): replaced by the implementation.
#include "error.hpp"
#include "weightbus/weightbus.h"

extern "C" {

WB_API int wb_split(int64_t, uint32_t, uint32_t, uint32_t, int64_t *, int64_t *) {
  return wb::fail(WB_E_STATE, "wb_split: not built yet");
}
WB_API int wb_split_vocab(int64_t, int64_t, uint32_t, uint32_t, int64_t *, int64_t *, int64_t *) {
  return wb::fail(WB_E_STATE, "wb_split_vocab: not built yet");
}
WB_API int wb_parts_qkv(const char *, const char *, const char *, int64_t, int64_t, int64_t, int64_t, uint32_t,
                        uint32_t, wb_slice_part[3]) {
  return wb::fail(WB_E_STATE, "wb_parts_qkv: not built yet");
}
WB_API int wb_parts_merged(const char *const *, const int64_t *, uint32_t, int64_t, uint32_t, uint32_t,
                           wb_slice_part *) {
  return wb::fail(WB_E_STATE, "wb_parts_merged: not built yet");
}

}  // extern "C"
