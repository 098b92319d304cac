// The CUDA entry points of a library built without CUDA's headers (cuda.h): each says so with WB_E_NO_CUDA,
// and the core's hooks have nothing to do or say the same (copy-into's host copies need none of them). Built
// instead of the rest of cuda/ (see libclient/CMakeLists.txt).
#include "error.hpp"
#include "hooks.hpp"
#include "weightbus/weightbus.h"

namespace {

int unavailable() {
  return wb::fail(WB_E_NO_CUDA, "this libweightbus was built without CUDA headers (cuda.h); rebuild it with them "
                                "(e.g. CUDA_HOME=/usr/local/cuda) to use CUDA tensors");
}

}  // namespace

namespace wb::cuda {

int import_base(wb_client *, uint32_t, char **) { return unavailable(); }
void sweep(wb_client *) {}
void finish_published(wb_client *) {}
void write_arm_word(wb_client *, void *, std::atomic<uint64_t> &word, uint64_t token) { word.store(token); }
std::vector<uint32_t> imported_allocations(wb_client *) { return {}; }
void export_again(wb_client *) {}
void close_client(wb_client *) {}
int device_count(int *) { return unavailable(); }
int ordinal_of(const uint8_t[16], int *) { return unavailable(); }
int copy_on_stream(wb_snapshot *, const std::vector<Copy> &, void *) { return unavailable(); }
int run_plan_on_stream(wb_snapshot *, PlanGpu **, const std::vector<PlanCopy> &, const std::vector<Fill2D> &,
                       PlanSources *, int, void *) {
  return unavailable();
}
void destroy_plan_gpu(PlanGpu *) {}
int arm_plan_on_stream(wb_topic *, PlanGpu *, const std::vector<Fill2D> &, PlanSources *, int, void *,
                       const ArmTarget &, GpuArm **out) {
  *out = nullptr;
  return WB_OK;
}
bool finish_gpu_arm(wb_client *, GpuArm *) { return false; }
bool withdraw_gpu_arm(wb_client *, GpuArm *) { return false; }
void drop_gpu_arm(wb_client *, GpuArm *) {}
int run_convert_on_stream(wb_snapshot *, ConvertGpu **, const std::vector<wb_convert_dest> &,
                          const std::vector<wb_convert_rect> &, PlanSources *, int, void *) {
  return unavailable();
}
void destroy_convert_gpu(ConvertGpu *) {}
int convert_kernel_available(int) { return unavailable(); }

}  // namespace wb::cuda

extern "C" WB_API int wb_cuda_init(void) { return unavailable(); }
extern "C" WB_API int wb_cuda_device_uuid(int32_t, uint8_t[16]) { return unavailable(); }
extern "C" WB_API int wb_cuda_device_ordinal(const uint8_t[16], int32_t *) { return unavailable(); }
extern "C" WB_API int wb_tensor_alloc_cuda(wb_topic *, const wb_tensor_spec *, uint32_t, int32_t) {
  return unavailable();
}
extern "C" WB_API int wb_tensor_register_cuda(wb_topic *, const wb_tensor_spec *, void *const *, uint32_t) {
  return unavailable();
}
extern "C" WB_API int wb_shard_alloc_cuda(wb_topic *, const wb_shard_spec *, uint32_t, int32_t) {
  return unavailable();
}
extern "C" WB_API int wb_shard_register_cuda(wb_topic *, const wb_shard_spec *, void *const *, uint32_t) {
  return unavailable();
}
extern "C" WB_API int wb_tensor_revoke(wb_topic *, const char *, int64_t) { return unavailable(); }
extern "C" WB_API int wb_update_publish_on_stream(wb_update *, void *, const void *, uint32_t, uint64_t *) {
  return unavailable();
}
extern "C" WB_API int wb_snapshot_wait_stream(wb_snapshot *, void *) { return unavailable(); }
extern "C" WB_API int wb_snapshot_synchronize(wb_snapshot *, int64_t) { return unavailable(); }
