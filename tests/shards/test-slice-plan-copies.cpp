// A reader's plan as arithmetic (libclient/plan_math.cpp), without a broker: the exact row copies of each
// destination kind from FSDP dim-0 shards of uneven chunks: column (whole rows: 1-D copies), row (a cut of
// dimension 1: 2-D copies with both pitches), a strided destination, fused QKV with GQA (a KV head replicated),
// merged gate_up, a padded vocabulary slice (zero fills), 3-D expert boxes (several 2-D copies); the volume each
// part's copies add up to; and which of replicated shards a plan reads.
#include <initializer_list>
#include <vector>

#include "geometry.hpp"
#include "plan_math.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

using wb::plan::Candidate;
using wb::plan::RowCopy;
using wb::plan::Source;
using wb::plan::Target;
using wb::plan::ZeroFill;
using wb::region::Box;

namespace {

constexpr uint32_t kBf16 = 2;

Box box(std::initializer_list<int64_t> offsets, std::initializer_list<int64_t> extents) {
  Box b;
  b.ndim = uint32_t(offsets.size());
  uint32_t d = 0;
  for (int64_t o : offsets) b.offset[d++] = o;
  d = 0;
  for (int64_t e : extents) b.extent[d++] = e;
  return b;
}

// A contiguous shard holding `b` of the logical tensor.
Source shard(const Box &b) {
  Source s;
  s.box = b;
  wb::geometry::contiguous_strides(b.ndim, b.extent, s.strides);
  return s;
}

// torch.chunk of dimension 0 over n ranks: chunks of ceil(rows / n), the last ones short or empty.
std::vector<Source> fsdp_shards(std::initializer_list<int64_t> logical, uint32_t n) {
  std::vector<int64_t> shape(logical);
  int64_t chunk = (shape[0] + n - 1) / n;
  std::vector<Source> shards;
  for (uint32_t r = 0; r < n; ++r) {
    int64_t first = std::min<int64_t>(chunk * r, shape[0]);
    Box b;
    b.ndim = uint32_t(shape.size());
    for (uint32_t d = 0; d < b.ndim; ++d) b.extent[d] = shape[d];
    b.offset[0] = first;
    b.extent[0] = std::min<int64_t>(chunk, shape[0] - first);
    shards.push_back(shard(b));
  }
  return shards;
}

// A destination of `shape`, contiguous unless strides are given.
Target target(std::initializer_list<int64_t> shape, uint32_t concat_dim, int64_t concat_offset,
              std::initializer_list<int64_t> strides = {}) {
  Target t;
  std::vector<int64_t> s(shape);
  t.concat_dim = concat_dim;
  t.concat_offset = concat_offset;
  t.element_bytes = kBf16;
  wb::geometry::contiguous_strides(uint32_t(s.size()), s.data(), t.strides);
  uint32_t d = 0;
  for (int64_t stride : strides) t.strides[d++] = stride;
  return t;
}

void expect_copies(const std::vector<RowCopy> &got, std::initializer_list<RowCopy> want) {
  assert_int_equal(got.size(), want.size());
  size_t i = 0;
  for (const RowCopy &w : want) {
    const RowCopy &g = got[i++];
    assert_int_equal(g.source, w.source);
    assert_int_equal(g.src_offset, w.src_offset);
    assert_int_equal(g.dst_offset, w.dst_offset);
    assert_int_equal(g.row_bytes, w.row_bytes);
    assert_int_equal(g.rows, w.rows);
    assert_int_equal(g.src_pitch, w.src_pitch);
    assert_int_equal(g.dst_pitch, w.dst_pitch);
  }
}

// Logical [10, 8] in FSDP chunks of 3 rows over 4 ranks ([0:3], [3:6], [6:9], [9:10]); reader rank 1 of 2 takes
// rows [5:10): one 1-D copy per shard it meets.
void column_dest_is_one_copy_per_shard(void **) {
  std::vector<RowCopy> copies;
  Box part = box({5, 0}, {5, 8});
  assert_int_equal(wb::plan::part_copies(part, target({5, 8}, 0, 0), fsdp_shards({10, 8}, 4), &copies), 40);
  expect_copies(copies, {{1, 2 * 16, 0, 16, 1, 0, 0}, {2, 0, 16, 48, 1, 0, 0}, {3, 0, 64, 16, 1, 0, 0}});
}

// The same rows into a destination whose rows are 16 elements apart (a slice of a larger buffer): 2-D copies.
void strided_dest_makes_rows_of_its_pitch(void **) {
  std::vector<RowCopy> copies;
  Box part = box({5, 0}, {5, 8});
  Target t = target({5, 8}, 0, 0, {16, 1});
  assert_int_equal(wb::plan::part_copies(part, t, fsdp_shards({10, 8}, 4), &copies), 40);
  expect_copies(copies, {{1, 32, 0, 16, 1, 0, 0}, {2, 0, 32, 16, 3, 16, 32}, {3, 0, 128, 16, 1, 0, 0}});
}

// Row parallel: reader rank 1 of 2 takes columns [4:8) of every row: a 2-D copy per shard (a one-row shard is 1-D).
void row_dest_is_a_2d_copy_per_shard(void **) {
  std::vector<RowCopy> copies;
  Box part = box({0, 4}, {10, 4});
  assert_int_equal(wb::plan::part_copies(part, target({10, 4}, 1, 0), fsdp_shards({10, 8}, 4), &copies), 40);
  expect_copies(copies, {{0, 8, 0, 8, 3, 16, 8}, {1, 8, 24, 8, 3, 16, 8}, {2, 8, 48, 8, 3, 16, 8},
                         {3, 8, 72, 8, 1, 0, 0}});
}

// QKV with 32 query heads and 8 KV heads (head_dim 2, hidden 4) over M = 16 readers: rank 5 takes query heads
// 10-11 (rows [20:24)) and KV head 2 (rows [4:6), which rank 4 reads too), at dest rows 0, 4 and 6. q [64, 4],
// k and v [16, 4] are FSDP-sharded over 4 ranks.
void qkv_gqa_parts_land_one_after_the_other(void **) {
  std::vector<RowCopy> copies;
  assert_int_equal(wb::plan::part_copies(box({20, 0}, {4, 4}), target({8, 4}, 0, 0), fsdp_shards({64, 4}, 4), &copies),
                   16);
  assert_int_equal(wb::plan::part_copies(box({4, 0}, {2, 4}), target({8, 4}, 0, 4), fsdp_shards({16, 4}, 4), &copies),
                   8);
  assert_int_equal(wb::plan::part_copies(box({4, 0}, {2, 4}), target({8, 4}, 0, 6), fsdp_shards({16, 4}, 4), &copies),
                   8);
  expect_copies(copies, {{1, 4 * 8, 0, 32, 1, 0, 0}, {1, 0, 32, 16, 1, 0, 0}, {1, 0, 48, 16, 1, 0, 0}});
}

// QKV over M = 2: rank 1 takes q rows [32:64) and KV rows [8:16), which cross FSDP shard edges.
void qkv_parts_split_at_shard_edges(void **) {
  std::vector<RowCopy> copies;
  assert_int_equal(
      wb::plan::part_copies(box({32, 0}, {32, 4}), target({48, 4}, 0, 0), fsdp_shards({64, 4}, 3), &copies), 128);
  assert_int_equal(
      wb::plan::part_copies(box({8, 0}, {8, 4}), target({48, 4}, 0, 32), fsdp_shards({16, 4}, 3), &copies), 32);
  // q chunks of 22 rows: [22:44) and [44:64); k chunks of 6: [6:12) and [12:16).
  expect_copies(copies, {{1, 10 * 8, 0, 12 * 8, 1, 0, 0}, {2, 0, 12 * 8, 20 * 8, 1, 0, 0},
                         {1, 2 * 8, 32 * 8, 4 * 8, 1, 0, 0}, {2, 0, 36 * 8, 4 * 8, 1, 0, 0}});
}

// gate_up: gate and up [8, 4] each in FSDP chunks 3, 3, 2; reader rank 1 of 2 takes rows [4:8) of both.
void merged_parts_follow_each_other(void **) {
  std::vector<RowCopy> copies;
  std::vector<Source> shards = fsdp_shards({8, 4}, 3);
  assert_int_equal(wb::plan::part_copies(box({4, 0}, {4, 4}), target({8, 4}, 0, 0), shards, &copies), 16);
  assert_int_equal(wb::plan::part_copies(box({4, 0}, {4, 4}), target({8, 4}, 0, 4), shards, &copies), 16);
  expect_copies(copies, {{1, 8, 0, 16, 1, 0, 0}, {2, 0, 16, 16, 1, 0, 0}, {1, 8, 32, 16, 1, 0, 0},
                         {2, 0, 48, 16, 1, 0, 0}});
}

// Vocabulary 10 padded to 12, over 2 readers: rank 1 copies the real rows [6:10) and zero-fills 2 more rows.
void vocab_pad_is_a_zero_fill_after_the_rows(void **) {
  std::vector<RowCopy> copies;
  std::vector<ZeroFill> fills;
  Box part = box({6, 0}, {4, 4});
  Target t = target({6, 4}, 0, 0);
  assert_int_equal(wb::plan::part_copies(part, t, {shard(box({0, 0}, {10, 4}))}, &copies), 16);
  wb::plan::pad_fills(part, 2, t, &fills);
  expect_copies(copies, {{0, 6 * 8, 0, 32, 1, 0, 0}});
  assert_int_equal(fills.size(), 1);
  assert_int_equal(fills[0].dst_offset, 32);
  assert_int_equal(fills[0].row_bytes, 16);
  assert_int_equal(fills[0].rows, 1);
}

// A pad along dimension 1 is a column of zeros: one 2-D fill.
void pad_along_dim_1_is_a_2d_fill(void **) {
  std::vector<ZeroFill> fills;
  wb::plan::pad_fills(box({0, 0}, {2, 3}), 1, target({2, 4}, 1, 0), &fills);
  assert_int_equal(fills.size(), 1);
  assert_int_equal(fills[0].dst_offset, 6);
  assert_int_equal(fills[0].row_bytes, 2);
  assert_int_equal(fills[0].rows, 2);
  assert_int_equal(fills[0].pitch, 8);
}

// Experts [4, 8, 3] sharded by expert over 2 ranks; a box that cuts dimensions 1 and 2 leaves 3 dimensions: one
// 2-D copy per expert.
void expert_boxes_are_one_2d_copy_per_expert(void **) {
  std::vector<RowCopy> copies;
  Box part = box({0, 2, 1}, {2, 2, 2});
  assert_int_equal(wb::plan::part_copies(part, target({2, 2, 2}, 1, 0), fsdp_shards({4, 8, 3}, 2), &copies), 8);
  expect_copies(copies, {{0, 14, 0, 4, 2, 6, 4}, {0, 14 + 48, 8, 4, 2, 6, 4}});
}

// An expert-parallel w13 dest: whole experts, columns [4:8) of dimension 1 of gate: rows of whole experts merge.
void expert_rows_merge_across_experts(void **) {
  std::vector<RowCopy> copies;
  Box part = box({0, 0, 4}, {4, 3, 4});
  assert_int_equal(wb::plan::part_copies(part, target({4, 3, 4}, 2, 0), fsdp_shards({4, 3, 8}, 2), &copies), 48);
  expect_copies(copies, {{0, 8, 0, 8, 6, 16, 8}, {1, 8, 48, 8, 6, 16, 8}});
}

// Shards that leave part of a box uncovered copy less than its volume (plan.cpp refuses such a plan).
void uncovered_part_copies_less_than_its_volume(void **) {
  std::vector<RowCopy> copies;
  std::vector<Source> shards = fsdp_shards({10, 8}, 4);
  shards.erase(shards.begin() + 2);
  assert_int_equal(wb::plan::part_copies(box({5, 0}, {5, 8}), target({5, 8}, 0, 0), shards, &copies), 16);
}

// Replicas of one box are read once: the one on the destination's GPU, else the lowest rank's.
void replicated_shards_are_read_once(void **) {
  Box all = box({0}, {8}), half = box({0}, {4});
  std::vector<Candidate> on_gpu = {{all, 2, true, false}, {all, 1, true, false}, {all, 3, true, true},
                                   {half, 0, false, false}};
  std::vector<uint32_t> chosen = wb::plan::choose_sources(on_gpu);
  assert_int_equal(chosen.size(), 2);
  assert_int_equal(chosen[0], 2);
  assert_int_equal(chosen[1], 3);
  std::vector<Candidate> host = {{all, 2, true, false}, {all, 1, true, false}, {half, 0, true, false}};
  chosen = wb::plan::choose_sources(host);
  assert_int_equal(chosen.size(), 2);
  assert_int_equal(chosen[0], 1);
  assert_int_equal(chosen[1], 2);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(column_dest_is_one_copy_per_shard),
      cmocka_unit_test(strided_dest_makes_rows_of_its_pitch),
      cmocka_unit_test(row_dest_is_a_2d_copy_per_shard),
      cmocka_unit_test(qkv_gqa_parts_land_one_after_the_other),
      cmocka_unit_test(qkv_parts_split_at_shard_edges),
      cmocka_unit_test(merged_parts_follow_each_other),
      cmocka_unit_test(vocab_pad_is_a_zero_fill_after_the_rows),
      cmocka_unit_test(pad_along_dim_1_is_a_2d_fill),
      cmocka_unit_test(expert_boxes_are_one_2d_copy_per_expert),
      cmocka_unit_test(expert_rows_merge_across_experts),
      cmocka_unit_test(uncovered_part_copies_less_than_its_volume),
      cmocka_unit_test(replicated_shards_are_read_once),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
