#include "geometry.hpp"

#include <cstring>

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::geometry {

namespace {

int check_dims(int32_t dtype, uint32_t ndim, const int64_t *shape) {
  if (wb_dtype_size(dtype) == 0) return fail(WB_E_DTYPE, "unknown dtype %d", dtype);
  if (ndim > WB_MAX_DIMS) return fail(WB_E_SHAPE, "ndim %u is over the limit of %d", ndim, WB_MAX_DIMS);
  if (ndim > 0 && shape == nullptr) return fail(WB_E_INVAL, "shape is NULL");
  for (uint32_t d = 0; d < ndim; ++d) {
    if (shape[d] < 0) return fail(WB_E_SHAPE, "extent %lld of dimension %u is negative", (long long)shape[d], d);
  }
  return WB_OK;
}

}  // namespace

int check_name(const char *name, size_t length, const char *what) {
  if (name == nullptr) return fail(WB_E_INVAL, "%s name is NULL", what);
  if (length == 0) return fail(WB_E_NAME_TOO_LONG, "%s name is empty", what);
  if (length > WB_NAME_MAX) {
    return fail(WB_E_NAME_TOO_LONG, "%s name is %zu bytes, over the limit of %d", what, length, WB_NAME_MAX);
  }
  if (memchr(name, '\0', length) != nullptr) return fail(WB_E_INVAL, "%s name contains a NUL byte", what);
  return WB_OK;
}

int check_name(const char *name, const char *what) {
  if (name == nullptr) return fail(WB_E_INVAL, "%s name is NULL", what);
  return check_name(name, strnlen(name, WB_NAME_MAX + 1), what);
}

int contiguous_bytes(int32_t dtype, uint32_t ndim, const int64_t *shape, uint64_t *nbytes) {
  int rc = check_dims(dtype, ndim, shape);
  if (rc != WB_OK) return rc;
  // Empty dimensions count as 1 in the bound, so that the strides of an empty tensor fit in int64 too
  // (a zero extent used to let any other extents through: found by fuzz-broker-messages).
  uint64_t total = wb_dtype_size(dtype);
  bool empty = false;
  for (uint32_t d = 0; d < ndim; ++d) {
    empty |= shape[d] == 0;
    uint64_t extent = shape[d] > 0 ? uint64_t(shape[d]) : 1;
    if (__builtin_mul_overflow(total, extent, &total) || total > (uint64_t{1} << 56)) {
      return fail(WB_E_SHAPE, "tensor of this shape is too large (over 2^56 bytes, empty dimensions counted as 1)");
    }
  }
  *nbytes = empty ? 0 : total;
  return WB_OK;
}

void contiguous_strides(uint32_t ndim, const int64_t *shape, int64_t *strides) {
  int64_t step = 1;
  for (uint32_t d = ndim; d-- > 0;) {
    strides[d] = step;
    step *= shape[d] > 0 ? shape[d] : 1;
  }
}

int strided_span(int32_t dtype, uint32_t ndim, const int64_t *shape, const int64_t *strides, uint64_t *span) {
  int rc = check_dims(dtype, ndim, shape);
  if (rc != WB_OK) return rc;
  if (ndim > 0 && strides == nullptr) return fail(WB_E_INVAL, "strides is NULL");
  uint64_t last = 0;  // element offset of the last element
  for (uint32_t d = 0; d < ndim; ++d) {
    if (strides[d] < 0) return fail(WB_E_SHAPE, "stride %lld of dimension %u is negative", (long long)strides[d], d);
    if (shape[d] == 0) {
      *span = 0;
      return WB_OK;
    }
    uint64_t step;
    if (__builtin_mul_overflow(uint64_t(shape[d] - 1), uint64_t(strides[d]), &step) ||
        __builtin_add_overflow(last, step, &last)) {
      return fail(WB_E_SIZE, "view window overflows");
    }
  }
  uint64_t bytes;
  if (__builtin_add_overflow(last, uint64_t{1}, &bytes) ||
      __builtin_mul_overflow(bytes, uint64_t{wb_dtype_size(dtype)}, &bytes)) {
    return fail(WB_E_SIZE, "view window overflows");
  }
  *span = bytes;
  return WB_OK;
}

}  // namespace wb::geometry
