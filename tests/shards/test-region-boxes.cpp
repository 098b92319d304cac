// The region math of sharded topics (core/region.hpp): volume, inside, intersect, format and first_gap, each a
// table of rows (1 to 3 dimensions, empty boxes, boxes that touch, nest or leave a gap).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "region.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

using wb::region::Box;

Box box(std::vector<std::pair<int64_t, int64_t>> dims) {  // {offset, end} per dimension
  Box b;
  b.ndim = uint32_t(dims.size());
  for (uint32_t d = 0; d < b.ndim; ++d) {
    b.offset[d] = dims[d].first;
    b.extent[d] = dims[d].second - dims[d].first;
  }
  return b;
}

void volume_and_format(void **) {
  struct Row {
    Box b;
    uint64_t volume;
    const char *text;
  } rows[] = {
      {box({}), 1, "[]"},
      {box({{0, 10}}), 10, "[0:10]"},
      {box({{3, 3}}), 0, "[3:3]"},
      {box({{0, 4096}, {2048, 4096}}), 4096ull * 2048, "[0:4096, 2048:4096]"},
      {box({{1, 2}, {0, 0}, {5, 9}}), 0, "[1:2, 0:0, 5:9]"},
  };
  for (const Row &r : rows) {
    assert_int_equal(wb::region::volume(r.b), r.volume);
    assert_string_equal(wb::region::format(r.b).c_str(), r.text);
  }
  Box far;  // a refused box's end past int64's range is printed as it is, not wrapped
  far.ndim = 2;
  far.offset[0] = INT64_MAX;
  far.extent[0] = 1;
  far.offset[1] = INT64_MIN;
  far.extent[1] = -1;
  assert_string_equal(wb::region::format(far).c_str(),
                      "[9223372036854775807:9223372036854775808, -9223372036854775808:-9223372036854775809]");
  int64_t shape[] = {4096, 12288};
  assert_string_equal(wb::region::format_shape(2, shape).c_str(), "[4096, 12288]");
  assert_string_equal(wb::region::format_shape(0, shape).c_str(), "[]");
}

void inside_its_shape(void **) {
  int64_t shape[] = {10, 20};
  struct Row {
    Box b;
    bool inside;
  } rows[] = {
      {box({{0, 10}, {0, 20}}), true},    {box({{10, 10}, {0, 20}}), true},  // empty at the end
      {box({{0, 11}, {0, 20}}), false},   {box({{-1, 3}, {0, 20}}), false},
      {box({{5, 4}, {0, 20}}), false},                                        // negative extent
      {box({{0, 10}, {19, 21}}), false},
  };
  for (const Row &r : rows) assert_int_equal(wb::region::inside(r.b, shape), r.inside);
  Box huge = box({{0, 10}, {0, 20}});
  huge.offset[0] = INT64_MAX;
  huge.extent[0] = INT64_MAX;  // offset + extent would overflow
  assert_false(wb::region::inside(huge, shape));
}

void intersections(void **) {
  struct Row {
    Box a, b;
    bool meet;
    const char *common;
  } rows[] = {
      {box({{0, 10}}), box({{5, 15}}), true, "[5:10]"},
      {box({{0, 10}}), box({{10, 15}}), false, ""},  // touching is not overlapping
      {box({{0, 10}, {0, 10}}), box({{2, 4}, {3, 5}}), true, "[2:4, 3:5]"},  // nested
      {box({{0, 10}, {0, 10}}), box({{2, 4}, {10, 12}}), false, ""},
      {box({{0, 4}, {0, 8}, {0, 2}}), box({{3, 9}, {4, 8}, {1, 2}}), true, "[3:4, 4:8, 1:2]"},
      {box({}), box({}), true, "[]"},
  };
  for (const Row &r : rows) {
    Box common;
    assert_int_equal(wb::region::intersect(r.a, r.b, &common), r.meet);
    if (r.meet) assert_string_equal(wb::region::format(common).c_str(), r.common);
  }
  assert_true(wb::region::same(box({{1, 2}, {3, 4}}), box({{1, 2}, {3, 4}})));
  assert_false(wb::region::same(box({{1, 2}, {3, 4}}), box({{1, 2}, {3, 5}})));
  assert_false(wb::region::same(box({{1, 2}}), box({{1, 2}, {0, 1}})));
}

void gaps(void **) {
  struct Row {
    const char *what;
    std::vector<int64_t> shape;
    std::vector<Box> boxes;
    const char *gap;  // nullptr: covered
  } rows[] = {
      {"dim-0 shards cover", {10, 4}, {box({{0, 3}, {0, 4}}), box({{3, 6}, {0, 4}}), box({{6, 10}, {0, 4}})}, nullptr},
      {"last rows missing", {151936, 4096},
       {box({{0, 38000}, {0, 4096}}), box({{38000, 76000}, {0, 4096}}), box({{76000, 114000}, {0, 4096}})},
       "[114000:151936, 0:4096]"},
      {"a hole in the middle, grown along both dims", {8, 8},
       {box({{0, 2}, {0, 8}}), box({{6, 8}, {0, 8}}), box({{2, 6}, {0, 2}}), box({{2, 6}, {6, 8}})},
       "[2:6, 2:6]"},
      {"column shards, one column range missing", {4, 12},
       {box({{0, 4}, {0, 4}}), box({{0, 4}, {8, 12}})}, "[0:4, 4:8]"},
      {"empty shards are ignored", {4}, {box({{0, 4}}), box({{4, 4}})}, nullptr},
      {"only empty shards", {4}, {box({{2, 2}})}, "[0:4]"},
      {"no shard at all", {3, 5}, {}, "[0:3, 0:5]"},
      {"replicated duplicates cover", {6}, {box({{0, 6}}), box({{0, 6}})}, nullptr},
      {"uneven chunks, the last rank empty", {10}, {box({{0, 3}}), box({{3, 6}}), box({{6, 9}}), box({{9, 10}})},
       nullptr},
      {"3-D experts, expert 2 missing", {4, 6, 2},
       {box({{0, 2}, {0, 6}, {0, 2}}), box({{3, 4}, {0, 6}, {0, 2}})}, "[2:3, 0:6, 0:2]"},
      {"a scalar covered", {}, {box({})}, nullptr},
      {"a scalar missing", {}, {}, "[]"},
      {"an empty tensor needs nothing", {0, 5}, {}, nullptr},
  };
  for (const Row &r : rows) {
    Box gap;
    bool found = wb::region::first_gap(uint32_t(r.shape.size()), r.shape.data(), r.boxes, &gap);
    if (found != (r.gap != nullptr)) fail_msg("%s: gap %s", r.what, found ? "found" : "not found");
    if (found && wb::region::format(gap) != r.gap) {
      fail_msg("%s: gap %s, expected %s", r.what, wb::region::format(gap).c_str(), r.gap);
    }
  }
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(volume_and_format),
      cmocka_unit_test(inside_its_shape),
      cmocka_unit_test(intersections),
      cmocka_unit_test(gaps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
