// The sizes the library and the broker both check tensor specs and views by (core/geometry.cpp), alone: a
// contiguous tensor's bytes (empty dimensions counted as 1 in the 2^56-byte bound), its row-major strides, and
// the bytes a strided view window spans, at every limit: scalars, empty extents, WB_MAX_DIMS, broadcast
// strides, the largest sizes that fit and the first that overflow, and every refusal with its code and a message.
#include <cstdint>
#include <cstring>
#include <vector>

#include "geometry.hpp"
#include "weightbus/weightbus.h"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

constexpr int64_t kMax = INT64_MAX;
constexpr int64_t k2to54 = int64_t{1} << 54;
constexpr int64_t k2to56 = int64_t{1} << 56;

// A call's outcome: the code, and the size when it is WB_OK (a refusal must leave a message).
void expect(const char *what, int rc, int want_rc, uint64_t got, uint64_t want) {
  if (rc != want_rc) fail_msg("%s: returned %d (%s), expected %d", what, rc, wb_strerror(rc), want_rc);
  if (rc == WB_OK && got != want)
    fail_msg("%s: %llu bytes, expected %llu", what, (unsigned long long)got, (unsigned long long)want);
  if (rc != WB_OK && wb_last_error()[0] == '\0') fail_msg("%s: refused without a message", what);
}

struct ContiguousRow {
  const char *what;
  int32_t dtype;
  std::vector<int64_t> shape;  // ndim is its size
  int rc;
  uint64_t nbytes;
};

const std::vector<ContiguousRow> kContiguous = {
    {"a scalar", WB_DTYPE_F32, {}, WB_OK, 4},
    {"a vector", WB_DTYPE_U8, {16}, WB_OK, 16},
    {"a matrix", WB_DTYPE_F32, {3, 4}, WB_OK, 48},
    {"WB_MAX_DIMS dimensions", WB_DTYPE_F64, {1, 2, 1, 2, 1, 2, 1, 2}, WB_OK, 128},
    {"WB_MAX_DIMS + 1 dimensions", WB_DTYPE_U8, {1, 1, 1, 1, 1, 1, 1, 1, 1}, WB_E_SHAPE, 0},
    {"an empty first dimension", WB_DTYPE_BF16, {0, 5}, WB_OK, 0},
    {"an empty last dimension", WB_DTYPE_F64, {5, 0}, WB_OK, 0},
    {"2^56 bytes of u8, the largest", WB_DTYPE_U8, {k2to56}, WB_OK, uint64_t(k2to56)},
    {"one byte over 2^56", WB_DTYPE_U8, {k2to56 + 1}, WB_E_SHAPE, 0},
    {"2^56 bytes of f32", WB_DTYPE_F32, {k2to54}, WB_OK, uint64_t(k2to56)},
    {"one f32 over 2^56 bytes", WB_DTYPE_F32, {k2to54 + 1}, WB_E_SHAPE, 0},
    {"over 2^56 in two dimensions", WB_DTYPE_U8, {k2to54, 8}, WB_E_SHAPE, 0},
    {"empty, but the other extent over the bound", WB_DTYPE_U8, {0, kMax}, WB_E_SHAPE, 0},
    {"extents whose product wraps", WB_DTYPE_U8, {kMax, kMax}, WB_E_SHAPE, 0},
    {"a negative extent", WB_DTYPE_U8, {4, -1}, WB_E_SHAPE, 0},
    {"dtype 0", 0, {4}, WB_E_DTYPE, 0},
    {"a dtype past the last", WB_DTYPE_U64 + 1, {4}, WB_E_DTYPE, 0},
};

void contiguous_bytes_of_each_row(void **) {
  for (const ContiguousRow &row : kContiguous) {
    uint64_t nbytes = 0;
    int rc = wb::geometry::contiguous_bytes(row.dtype, uint32_t(row.shape.size()), row.shape.data(), &nbytes);
    expect(row.what, rc, row.rc, nbytes, row.nbytes);
  }
}

struct StridesRow {
  const char *what;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

const std::vector<StridesRow> kStrides = {
    {"a vector", {7}, {1}},
    {"a matrix", {3, 4}, {4, 1}},
    {"three dimensions", {2, 3, 4}, {12, 4, 1}},
    {"an empty dimension counts as 1", {2, 0, 5}, {5, 5, 1}},
};

void contiguous_strides_of_each_row(void **) {
  for (const StridesRow &row : kStrides) {
    int64_t strides[WB_MAX_DIMS] = {};
    wb::geometry::contiguous_strides(uint32_t(row.shape.size()), row.shape.data(), strides);
    for (size_t d = 0; d < row.shape.size(); ++d) {
      if (strides[d] != row.strides[d])
        fail_msg("%s: stride %zu is %lld, expected %lld", row.what, d, (long long)strides[d],
                 (long long)row.strides[d]);
    }
  }
}

struct SpanRow {
  const char *what;
  int32_t dtype;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
  int rc;
  uint64_t span;
};

const std::vector<SpanRow> kSpans = {
    {"a scalar", WB_DTYPE_F32, {}, {}, WB_OK, 4},
    {"a contiguous vector", WB_DTYPE_F32, {4}, {1}, WB_OK, 16},
    {"two columns of rows of 8", WB_DTYPE_F32, {4, 2}, {8, 1}, WB_OK, (3 * 8 + 1 + 1) * 4},
    {"every other element", WB_DTYPE_U16, {5}, {2}, WB_OK, (4 * 2 + 1) * 2},
    {"a broadcast (stride 0)", WB_DTYPE_F64, {3}, {0}, WB_OK, 8},
    {"an empty extent", WB_DTYPE_F32, {0, 3}, {3, 1}, WB_OK, 0},
    {"an empty last extent", WB_DTYPE_F32, {3, 0}, {1, 1}, WB_OK, 0},
    {"2^63 bytes, the last element at INT64_MAX", WB_DTYPE_U8, {2}, {kMax}, WB_OK, uint64_t{1} << 63},
    {"2^64 - 1 bytes, the largest", WB_DTYPE_U8, {2, 2}, {kMax, kMax}, WB_OK, UINT64_MAX},
    {"the element offsets wrap", WB_DTYPE_U8, {3, 2}, {kMax, kMax}, WB_E_SIZE, 0},
    {"one extent times its stride wraps", WB_DTYPE_U8, {4}, {kMax}, WB_E_SIZE, 0},
    {"the bytes of the elements wrap", WB_DTYPE_U16, {2}, {kMax}, WB_E_SIZE, 0},
    {"the count past the last element wraps", WB_DTYPE_U8, {2, 2, 2}, {kMax, kMax, 1}, WB_E_SIZE, 0},
    {"a negative stride", WB_DTYPE_U8, {2}, {-1}, WB_E_SHAPE, 0},
    {"a negative extent", WB_DTYPE_U8, {-2}, {1}, WB_E_SHAPE, 0},
    {"WB_MAX_DIMS + 1 dimensions", WB_DTYPE_U8, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1},
     WB_E_SHAPE, 0},
    {"an unknown dtype", 99, {2}, {1}, WB_E_DTYPE, 0},
};

void strided_span_of_each_row(void **) {
  for (const SpanRow &row : kSpans) {
    uint64_t span = 0;
    uint32_t ndim = uint32_t(row.shape.size());
    int rc = wb::geometry::strided_span(row.dtype, ndim, row.shape.data(), row.strides.data(), &span);
    expect(row.what, rc, row.rc, span, row.span);
  }
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(contiguous_bytes_of_each_row),
      cmocka_unit_test(contiguous_strides_of_each_row),
      cmocka_unit_test(strided_span_of_each_row),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
