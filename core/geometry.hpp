// Validation of names, dtypes, shapes and view windows: one set of rules for the library's early checks and
// the broker's authoritative ones.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wb::geometry {

// A name must be 1..WB_NAME_MAX bytes of which none is NUL (length is the byte count the sender claims).
int check_name(const char *name, size_t length, const char *what);
int check_name(const char *name, const char *what);

// Bytes of a contiguous tensor, or WB_E_DTYPE / WB_E_SHAPE (ndim over WB_MAX_DIMS, negative extent, overflow).
int contiguous_bytes(int32_t dtype, uint32_t ndim, const int64_t *shape, uint64_t *nbytes);

// Row-major strides in elements.
void contiguous_strides(uint32_t ndim, const int64_t *shape, int64_t *strides);

// Bytes spanned by a strided window starting at its first element: 0 when any extent is 0.
// WB_E_DTYPE, WB_E_SHAPE (bad ndim/extents/negative strides) or WB_E_SIZE (overflow).
int strided_span(int32_t dtype, uint32_t ndim, const int64_t *shape, const int64_t *strides, uint64_t *span);

}  // namespace wb::geometry
