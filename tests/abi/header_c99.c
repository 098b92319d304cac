/* Compiles the public headers as strict C99: the build of this file is the test. */
#include <weightbus/dlpack_versioned.h>
#include <weightbus/weightbus.h>

int header_c99_options_are_initialisable(void);
int header_c99_versioned_exports_are_declared(wb_snapshot *snapshot);

int header_c99_options_are_initialisable(void) {
  wb_attach_options attach = WB_ATTACH_OPTIONS_INIT;
  wb_topic_options topic = WB_TOPIC_OPTIONS_INIT;
  wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
  wb_view_spec view = WB_VIEW_SPEC_INIT;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  wb_topic_info topic_info = WB_TOPIC_INFO_INIT;
  wb_client_info client_info = WB_CLIENT_INFO_INIT;
  return (int)(attach.struct_size + topic.struct_size + spec.struct_size + view.struct_size + info.struct_size +
               topic_info.struct_size + client_info.struct_size);
}

int header_c99_versioned_exports_are_declared(wb_snapshot *snapshot) {
  struct DLManagedTensorVersioned *managed = NULL;
  int rc = wb_snapshot_dlpack_versioned(snapshot, "w", &managed);
  return rc == WB_OK && (managed->flags & DLPACK_FLAG_BITMASK_READ_ONLY) ? (int)managed->version.major : rc;
}
