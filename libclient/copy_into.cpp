// Copy-into's entry point, built with and without CUDA: every target is checked before anything is copied, host
// tensors into host memory are copied with memcpy here, and the copies with a GPU on either side go to the CUDA
// part (cuda/copy.cpp), which a library built without cuda.h lacks: there they are WB_E_NO_CUDA. Targets that
// convert (weightbus.h, "Conversions") are one rectangle each of convert.hpp's, run here on the host or by the
// conversion kernel.
#include <cstring>
#include <string>
#include <vector>

#include "convert.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "geometry.hpp"
#include "layout.hpp"
#include "snapshot.hpp"
#include "struct_size.hpp"
#include "topic.hpp"

namespace wb {

namespace {

const wb_copy_target &target_at(const wb_copy_target *targets, uint32_t i) {
  return *reinterpret_cast<const wb_copy_target *>(reinterpret_cast<const char *>(targets) +
                                                   size_t(i) * targets[0].struct_size);
}

// What resolving a batch asks of the devices, asked once: the GPU count, and the ordinal of the last GPU seen.
struct Devices {
  int count = -1;
  uint8_t uuid[16] = {};
  int ordinal = -1;
};

int check_device(uint32_t i, int32_t device, Devices *devices) {
  if (device < -1) {
    return fail(WB_E_INVAL, "targets[%u].device is %d: a CUDA ordinal, or -1 for host memory", i, device);
  }
  if (device == -1) return WB_OK;
  if (devices->count < 0) {
    int rc = cuda::device_count(&devices->count);
    if (rc != WB_OK) return fail(rc, "targets[%u].device is %d: %s", i, device, wb_last_error());
  }
  if (device >= devices->count) {
    return fail(WB_E_INVAL, "targets[%u].device is %d, but this process sees %d GPU(s)", i, device, devices->count);
  }
  return WB_OK;
}

int ordinal_of_tensor(const wb_tensor_info &info, Devices *devices, int *ordinal) {
  if (devices->ordinal < 0 || memcmp(devices->uuid, info.device_uuid, sizeof(devices->uuid)) != 0) {
    int rc = cuda::ordinal_of(info.device_uuid, &devices->ordinal);
    if (rc != WB_OK) return rc;
    memcpy(devices->uuid, info.device_uuid, sizeof(devices->uuid));
  }
  *ordinal = devices->ordinal;
  return WB_OK;
}

// A converting target: its destination, its one rectangle (the whole tensor, from source i) and where it runs.
struct Conversion {
  wb_convert_dest dest{};
  wb_convert_rect rect{};
  const char *src = nullptr;
  int ordinal = -1;  // the GPU it runs on, or -1 on the host
};

// A target whose dtype or scales ask for a conversion, checked (the tensor contiguous, the pair and sizes, source
// and destination both in host memory or both on one GPU with the kernel) into *out.
int resolve_conversion(uint32_t i, const wb_copy_target &target, const wb_tensor_info &info,
                       const convert::Request &request, Devices *devices, Conversion *out) {
  // Named in errors, and formatted only for them: copy-into resolves hundreds of targets on every call.
  const auto what = [&] { return "targets[" + std::to_string(i) + "] ('" + info.name + "')"; };
  int64_t contiguous[WB_MAX_DIMS] = {};
  geometry::contiguous_strides(info.ndim, info.shape, contiguous);
  for (uint32_t d = 0; d < info.ndim; ++d) {
    if (info.shape[d] > 1 && info.strides[d] != contiguous[d]) {
      return fail(WB_E_SHAPE, "%s: a strided view cannot be converted: copy it as it is, or convert its parent",
                  what().c_str());
    }
  }
  int rc = convert::describe(request, info.ndim, info.shape, target.dst, target.dst_bytes, &out->dest);
  if (rc != WB_OK) return fail(rc, "%s: %s", what().c_str(), wb_last_error());
  out->dest.first_rect = i;
  out->dest.rect_count = 1;
  out->rect.rows = out->dest.rows;
  out->rect.cols = out->dest.cols;
  out->rect.src_pitch = out->dest.cols * convert::element_size(out->dest.src_dtype);
  out->rect.source = i;
  out->src = static_cast<const char *>(info.data);
  if (info.device_type != WB_DEVICE_CUDA && target.device < 0) return WB_OK;
  int tensor_ordinal = -1;
  if (info.device_type == WB_DEVICE_CUDA && (rc = ordinal_of_tensor(info, devices, &tensor_ordinal)) != WB_OK) {
    return fail(rc, "%s: %s", what().c_str(), wb_last_error());
  }
  if (tensor_ordinal != target.device) {
    return fail(WB_E_NO_CUDA, "%s: conversions run on the host (host tensor into host memory) or on dst's GPU "
                "(a tensor on that GPU); this tensor is %s and dst %s", what().c_str(),
                tensor_ordinal < 0 ? "in host memory" : ("on GPU " + std::to_string(tensor_ordinal)).c_str(),
                target.device < 0 ? "in host memory" : ("on GPU " + std::to_string(target.device)).c_str());
  }
  if ((rc = cuda::convert_kernel_available(target.device)) != WB_OK) {
    return fail(rc, "%s: %s", what().c_str(), wb_last_error());
  }
  out->ordinal = target.device;
  return WB_OK;
}

int resolve(wb_snapshot *snapshot, uint32_t i, const wb_copy_target &target, uint32_t tensor_slot,
            uint32_t position, Devices *devices, cuda::Copy *out, std::vector<Conversion> *conversions) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = lookup_tensor(snapshot, tensor_slot, position, &info);
  if (rc != WB_OK) return fail(rc, "targets[%u]: %s", i, wb_last_error());
  if ((rc = check_device(i, target.device, devices)) != WB_OK) return rc;
  // An empty buffer may have no address (PyTorch gives a tensor without elements none).
  if (target.dst == nullptr && info.nbytes > 0) {
    return fail(WB_E_INVAL, "targets[%u] ('%s'): dst is NULL", i, info.name);
  }
  convert::Request request{info.dtype,       target.dtype, target.scale_layout, target.block_rows,
                           target.block_cols, target.scale, target.scale_bytes};
  if (convert::converts(request)) {
    conversions->emplace_back();
    return resolve_conversion(i, target, info, request, devices, &conversions->back());
  }
  if (target.dst_bytes < info.nbytes) {
    return fail(WB_E_SIZE, "targets[%u]: tensor '%s' has %llu bytes, but dst_bytes is %llu", i, info.name,
                (unsigned long long)info.nbytes, (unsigned long long)target.dst_bytes);
  }
  out->src = static_cast<const char *>(info.data);
  out->dst = static_cast<char *>(target.dst);
  out->bytes = info.nbytes;
  out->cuda = info.device_type == WB_DEVICE_CUDA || target.device >= 0;
  out->ordinal = target.device;
  if (info.device_type == WB_DEVICE_CUDA && (rc = ordinal_of_tensor(info, devices, &out->ordinal)) != WB_OK) {
    return fail(rc, "targets[%u] ('%s'): %s", i, info.name, wb_last_error());
  }
  return WB_OK;
}

// Every target's copy or conversion, checked before anything is copied. A converting target's copy stays empty.
int resolve_all(wb_snapshot *snapshot, const wb_copy_target *targets, uint32_t count, std::vector<cuda::Copy> *copies,
                std::vector<Conversion> *conversions) {
  std::vector<TensorKey> keys(count);
  for (uint32_t i = 0; i < count; ++i) {
    keys[i].name = target_at(targets, i).name;
    keys[i].position = target_at(targets, i).index;
  }
  std::vector<uint32_t> slots, positions;
  uint32_t failed = 0;
  int rc = snapshot->topic->tensors.find_many(keys, &slots, &positions, &failed);
  if (rc != WB_OK) return fail(rc, "targets[%u]: %s", failed, wb_last_error());
  Devices devices;
  copies->resize(count);
  for (uint32_t i = 0; rc == WB_OK && i < count; ++i) {
    rc = resolve(snapshot, i, target_at(targets, i), slots[i], positions[i], &devices, &(*copies)[i], conversions);
  }
  if (rc != WB_OK) return rc;
  for (const Conversion &c : *conversions) {
    if (c.ordinal != conversions->front().ordinal && c.ordinal >= 0 && conversions->front().ordinal >= 0) {
      return fail(WB_E_INVAL, "targets[%u]: converting targets of one call are on one GPU: this one is on GPU %d, "
                  "targets[%u] on GPU %d", c.rect.source, c.ordinal, conversions->front().rect.source,
                  conversions->front().ordinal);
    }
  }
  return WB_OK;
}

// The conversions: the host's here, the GPU's in one batch on stream.
int run_conversions(wb_snapshot *snapshot, const std::vector<Conversion> &conversions, void *stream) {
  std::vector<const char *> sources;
  std::vector<wb_convert_dest> gpu_dests;
  std::vector<wb_convert_rect> gpu_rects;
  int ordinal = -1;
  for (const Conversion &c : conversions) {
    if (c.ordinal < 0) {
      // One rectangle of one source: number both 0 for the host's run.
      wb_convert_dest dest = c.dest;
      wb_convert_rect rect = c.rect;
      dest.first_rect = 0;
      rect.source = 0;
      convert::run_host(dest, &rect, &c.src);
      continue;
    }
    ordinal = c.ordinal;
    wb_convert_dest dest = c.dest;
    wb_convert_rect rect = c.rect;
    dest.first_rect = uint32_t(gpu_rects.size());
    rect.source = uint32_t(sources.size());
    sources.push_back(c.src);
    gpu_dests.push_back(dest);
    gpu_rects.push_back(rect);
  }
  if (gpu_dests.empty()) return WB_OK;
  cuda::PlanSources found(sources.size(), [&sources, ordinal](uint32_t k, cuda::PlanSource *out) {
    out->data = sources[k];
    out->on_gpu = true;
    out->ordinal = ordinal;
    return WB_OK;
  });
  return cuda::run_convert_on_stream(snapshot, nullptr, gpu_dests, gpu_rects, &found, ordinal, stream);
}

}  // namespace

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_snapshot_copy_into(wb_snapshot *snapshot, const wb_copy_target *targets, uint32_t count,
                                            void *stream) try {
  if (snapshot == nullptr || targets == nullptr || count == 0) {
    return fail(WB_E_INVAL, "snapshot or targets is NULL, or count is 0");
  }
  int rc = check_struct_size(targets[0].struct_size, sizeof(wb_copy_target), "wb_copy_target");
  if (rc != WB_OK) return rc;
  std::vector<cuda::Copy> copies;
  std::vector<Conversion> conversions;
  if ((rc = resolve_all(snapshot, targets, count, &copies, &conversions)) != WB_OK) return rc;
  bool any_cuda = false, any_host = false;
  for (const cuda::Copy &c : copies) {
    any_cuda |= c.cuda;
    any_host |= !c.cuda && c.bytes > 0;
  }
  for (const Conversion &c : conversions) any_host |= c.ordinal < 0;
  // Host bytes written by GPU work (a version published on a stream) are read once that work is done.
  if (any_host && (snapshot->record_flags & shm::kRecordOnStream) &&
      (rc = wb_snapshot_synchronize(snapshot, -1)) != WB_OK) {
    return rc;
  }
  for (const cuda::Copy &c : copies) {
    if (!c.cuda && c.bytes > 0) memcpy(c.dst, c.src, c.bytes);
  }
  if (any_cuda && (rc = cuda::copy_on_stream(snapshot, copies, stream)) != WB_OK) return rc;
  return conversions.empty() ? WB_OK : run_conversions(snapshot, conversions, stream);
} catch (...) {
  return wb::abi_error(__func__);
}
