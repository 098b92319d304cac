// No GPU, no problem: with libcuda missing (forced here with $WEIGHTBUS_LIBCUDA, so that the test means the
// same on GPU machines), every CUDA entry point returns WB_E_NO_CUDA with a message naming the driver, NULL
// arguments are WB_E_INVAL, and host tensors keep working in the same process, copy-into included.
#include <cstring>

#include "common.hpp"

using gpu::attach;

namespace {

void expect_no_cuda(int rc, const char *call) {
  if (rc != WB_E_NO_CUDA) {
    gpu::die("%s returned %d (%s), expected WB_E_NO_CUDA: %s", call, rc, wb_strerror(rc), wb_last_error());
  }
  if (strstr(wb_last_error(), "libcuda") == nullptr) {
    gpu::die("%s: the message does not name libcuda: '%s'", call, wb_last_error());
  }
}
#define NO_CUDA(call) expect_no_cuda((call), #call)

// Publishes a version whose tensors hold `value` in every byte.
uint64_t publish(wb_topic *topic, uint8_t value, void *stream_for_failing_call) {
  wb_update *update;
  WB(wb_update_begin(topic, 5000, &update));
  for (const char *name : {"a", "b"}) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_update_tensor(update, name, &info));
    memset(info.data, value, info.nbytes);
  }
  NO_CUDA(wb_update_publish_on_stream(update, stream_for_failing_call, nullptr, 0, nullptr));
  uint64_t version;
  WB(wb_update_publish(update, &value, 1, &version));  // the failed call left the update open
  return version;
}

void check_snapshot(wb_topic *reader, uint8_t value) {
  wb_snapshot *snap;
  WB(wb_snapshot_acquire(reader, 0, 5000, &snap));
  NO_CUDA(wb_snapshot_wait_stream(snap, nullptr));
  NO_CUDA(wb_snapshot_synchronize(snap, 0));
  std::vector<uint8_t> dst(4096, 0xee);
  wb_copy_target targets[2] = {WB_COPY_TARGET_INIT, WB_COPY_TARGET_INIT};
  targets[0].name = "a";
  targets[0].dst = dst.data();
  targets[0].dst_bytes = 1024;
  targets[1].index = 1;  // "b", by index
  targets[1].dst = dst.data() + 1024;
  targets[1].dst_bytes = 3072;
  WB(wb_snapshot_copy_into(snap, targets, 2, nullptr));
  for (size_t i = 0; i < 1024 + 2048; ++i) {
    if (dst[i] != value) gpu::die("copy_into: byte %zu is %u, expected %u", i, dst[i], value);
  }
  if (dst[1024 + 2048] != 0xee) gpu::die("copy_into wrote past tensor b");
  targets[1].dst_bytes = 2047;
  WB_EXPECT(wb_snapshot_copy_into(snap, targets, 2, nullptr), WB_E_SIZE);
  targets[1].dst_bytes = 3072;
  targets[1].device = 0;  // a GPU destination needs CUDA
  NO_CUDA(wb_snapshot_copy_into(snap, targets, 2, nullptr));
  targets[1].device = -2;
  WB_EXPECT(wb_snapshot_copy_into(snap, targets, 2, nullptr), WB_E_INVAL);
  WB_EXPECT(wb_snapshot_copy_into(snap, nullptr, 1, nullptr), WB_E_INVAL);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  WB(wb_snapshot_tensor(snap, "b", &info));
  if (info.device_type != WB_DEVICE_HOST || static_cast<uint8_t *>(info.data)[2047] != value) {
    gpu::die("tensor b reads wrong");
  }
  WB(wb_snapshot_release(snap));
}

}  // namespace

int main() {
  setenv("WEIGHTBUS_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  gpu::Broker broker;
  wb_client *client = attach(broker.socket(), "cuda-absent");
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  wb_topic *topic;
  WB(wb_topic_create(client, "host", &opts, &topic));
  wb_tensor_spec specs[2] = {WB_TENSOR_SPEC_INIT, WB_TENSOR_SPEC_INIT};
  specs[0].name = "a";
  specs[0].dtype = WB_DTYPE_U8;
  specs[0].ndim = 1;
  specs[0].shape[0] = 1024;
  specs[1] = specs[0];
  specs[1].name = "b";
  specs[1].shape[0] = 2048;
  WB(wb_tensor_alloc(topic, specs, 2));

  NO_CUDA(wb_cuda_init());
  uint8_t uuid[16] = {0};
  int32_t ordinal;
  NO_CUDA(wb_cuda_device_uuid(0, uuid));
  NO_CUDA(wb_cuda_device_ordinal(uuid, &ordinal));
  wb_tensor_spec gpu_spec = specs[0];
  gpu_spec.name = "on_gpu";
  NO_CUDA(wb_tensor_alloc_cuda(topic, &gpu_spec, 1, 0));
  void *pointers[2] = {uuid, uuid};  // one per replica
  NO_CUDA(wb_tensor_register_cuda(topic, &gpu_spec, pointers, 1));
  NO_CUDA(wb_tensor_revoke(topic, "a", 0));
  WB_EXPECT(wb_cuda_device_uuid(0, nullptr), WB_E_INVAL);
  WB_EXPECT(wb_cuda_device_ordinal(nullptr, &ordinal), WB_E_INVAL);
  WB_EXPECT(wb_tensor_alloc_cuda(nullptr, &gpu_spec, 1, 0), WB_E_INVAL);
  WB_EXPECT(wb_tensor_register_cuda(topic, &gpu_spec, nullptr, 1), WB_E_INVAL);
  WB_EXPECT(wb_tensor_revoke(nullptr, "a", 0), WB_E_INVAL);
  WB_EXPECT(wb_update_publish_on_stream(nullptr, nullptr, nullptr, 0, nullptr), WB_E_INVAL);
  WB_EXPECT(wb_snapshot_wait_stream(nullptr, nullptr), WB_E_INVAL);
  WB_EXPECT(wb_snapshot_synchronize(nullptr, 0), WB_E_INVAL);
  if (strstr(wb_strerror(WB_E_CUDA), "WB_E_CUDA") == nullptr) gpu::die("wb_strerror does not name WB_E_CUDA");

  // Host tensors still work in this process, through a second client too.
  wb_client *other = attach(broker.socket(), "cuda-absent-reader");
  wb_topic *reader;
  WB(wb_topic_open(other, "host", &reader));
  publish(topic, 0x5a, nullptr);
  check_snapshot(reader, 0x5a);
  publish(topic, 0xa5, nullptr);
  check_snapshot(reader, 0xa5);
  WB(wb_topic_close(reader));
  WB(wb_detach(other));
  WB(wb_topic_close(topic));
  WB(wb_detach(client));
  gpu::result("cuda-absent", "PASS every CUDA entry point returned WB_E_NO_CUDA; host tensors still work");
  return 0;
}
