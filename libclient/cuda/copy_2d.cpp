// A plan's strided copies and zero fills on the reader's stream, after the version's GPU work: one
// cuMemcpy2DAsync per copy (the driver picks device-to-device, peer, device-to-host or host-to-device from the
// memory types; device pointers of other GPUs work through unified addressing), one cuMemsetD2D8Async per fill.
// Its 1-D copies go through copy_on_stream (the copy kernel); a 2-D kernel is this version's missing piece.
#include "client.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "hooks.hpp"
#include "snapshot.hpp"

namespace wb::cuda {

namespace {

int memcpy_2d_async(const Driver *d, const Copy2D &c, CUstream stream) {
  CUDA_MEMCPY2D p = {};
  if (c.src_on_gpu) {
    p.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    p.srcDevice = reinterpret_cast<CUdeviceptr>(c.src);
  } else {
    p.srcMemoryType = CU_MEMORYTYPE_HOST;
    p.srcHost = c.src;
  }
  if (c.dst_on_gpu) {
    p.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    p.dstDevice = reinterpret_cast<CUdeviceptr>(c.dst);
  } else {
    p.dstMemoryType = CU_MEMORYTYPE_HOST;
    p.dstHost = c.dst;
  }
  p.srcPitch = c.src_pitch;
  p.dstPitch = c.dst_pitch;
  p.WidthInBytes = c.row_bytes;
  p.Height = c.rows;
  return check(d->cuMemcpy2DAsync(&p, stream), "cuMemcpy2DAsync");
}

int fill_async(const Driver *d, const Fill2D &f, CUstream stream) {
  auto dst = reinterpret_cast<CUdeviceptr>(f.dst);
  if (f.rows == 1) return check(d->cuMemsetD8Async(dst, 0, f.row_bytes, stream), "cuMemsetD8Async");
  return check(d->cuMemsetD2D8Async(dst, f.pitch, 0, f.row_bytes, f.rows, stream), "cuMemsetD2D8Async");
}

}  // namespace

int copy_2d_on_stream(wb_snapshot *snapshot, const std::vector<Copy2D> &copies, const std::vector<Fill2D> &fills,
                      void *stream) {
  const Driver *d = nullptr;
  int ordinal = copies.empty() ? (fills.empty() ? -1 : fills[0].ordinal) : copies[0].ordinal;
  CUcontext context = nullptr;
  ContextGuard guard;
  int rc = driver(&d);
  if (rc != WB_OK || (rc = stream_context(stream, ordinal, &context)) != WB_OK || (rc = guard.push(context)) != WB_OK ||
      (rc = wb_snapshot_wait_stream(snapshot, stream)) != WB_OK) {
    return rc;
  }
  auto s = static_cast<CUstream>(stream);
  for (const Copy2D &c : copies) {
    if ((rc = memcpy_2d_async(d, c, s)) != WB_OK) return rc;
  }
  for (const Fill2D &f : fills) {
    if ((rc = fill_async(d, f, s)) != WB_OK) return rc;
  }
  return WB_OK;
}

}  // namespace wb::cuda
