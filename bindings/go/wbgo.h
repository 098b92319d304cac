/* What every cgo preamble of package weightbus includes: the header, and its ..._INIT macros as functions,
 * because cgo cannot use an initializer list. Go code thereby starts from exactly the header's defaults. */
#ifndef WEIGHTBUS_GO_H
#define WEIGHTBUS_GO_H

#include <stdlib.h>

#include <weightbus/weightbus.h>

static inline wb_attach_options wbgo_attach_options(void) {
  wb_attach_options v = WB_ATTACH_OPTIONS_INIT;
  return v;
}
static inline wb_topic_options wbgo_topic_options(void) {
  wb_topic_options v = WB_TOPIC_OPTIONS_INIT;
  return v;
}
static inline wb_topic_info wbgo_topic_info(void) {
  wb_topic_info v = WB_TOPIC_INFO_INIT;
  return v;
}
static inline wb_tensor_spec wbgo_tensor_spec(void) {
  wb_tensor_spec v = WB_TENSOR_SPEC_INIT;
  return v;
}
static inline wb_view_spec wbgo_view_spec(void) {
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  return v;
}
static inline wb_tensor_info wbgo_tensor_info(void) {
  wb_tensor_info v = WB_TENSOR_INFO_INIT;
  return v;
}
static inline wb_client_info wbgo_client_info(void) {
  wb_client_info v = WB_CLIENT_INFO_INIT;
  return v;
}
static inline wb_rank_options wbgo_rank_options(void) {
  wb_rank_options v = WB_RANK_OPTIONS_INIT;
  return v;
}
static inline wb_shard_spec wbgo_shard_spec(void) {
  wb_shard_spec v = WB_SHARD_SPEC_INIT;
  return v;
}
static inline wb_rank_info wbgo_rank_info(void) {
  wb_rank_info v = WB_RANK_INFO_INIT;
  return v;
}
static inline wb_slice_part wbgo_slice_part(void) {
  wb_slice_part v = WB_SLICE_PART_INIT;
  return v;
}
static inline wb_slice_dest wbgo_slice_dest(void) {
  wb_slice_dest v = WB_SLICE_DEST_INIT;
  return v;
}
static inline wb_plan_info wbgo_plan_info(void) {
  wb_plan_info v = WB_PLAN_INFO_INIT;
  return v;
}

#endif
