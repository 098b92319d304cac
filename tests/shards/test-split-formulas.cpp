// The frameworks' split formulas (wb_split, wb_split_vocab, wb_parts_qkv, wb_parts_merged), a row per case:
// even and torch.chunk splits (uneven and empty last ranks), vLLM's padded vocabulary, fused QKV with GQA for
// M = 2, 4 and 16 (KV heads replicated past 8 ranks), merged gate_up; and each error with its message.
#include <cstring>

#include "weightbus/weightbus.h"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

void expect_error(int rc, int want, const char *words) {
  assert_int_equal(rc, want);
  if (strstr(wb_last_error(), words) == nullptr) fail_msg("\"%s\" does not say \"%s\"", wb_last_error(), words);
}

struct SplitRow {
  int64_t size;
  uint32_t ranks;
  uint32_t mode;
  int64_t offsets[4];
  int64_t extents[4];
};

void splits_follow_even_and_chunk(void **) {
  const SplitRow rows[] = {
      {8, 4, WB_SPLIT_EVEN, {0, 2, 4, 6}, {2, 2, 2, 2}},
      {10, 4, WB_SPLIT_CHUNK, {0, 3, 6, 9}, {3, 3, 3, 1}},
      {2, 4, WB_SPLIT_CHUNK, {0, 1, 2, 2}, {1, 1, 0, 0}},
      {0, 4, WB_SPLIT_CHUNK, {0, 0, 0, 0}, {0, 0, 0, 0}},
      {8, 4, WB_SPLIT_CHUNK, {0, 2, 4, 6}, {2, 2, 2, 2}},
      {9, 4, WB_SPLIT_CHUNK, {0, 3, 6, 9}, {3, 3, 3, 0}},
  };
  for (const SplitRow &row : rows) {
    for (uint32_t r = 0; r < row.ranks; ++r) {
      int64_t offset = -1, extent = -1;
      assert_int_equal(wb_split(row.size, r, row.ranks, row.mode, &offset, &extent), WB_OK);
      assert_int_equal(offset, row.offsets[r]);
      assert_int_equal(extent, row.extents[r]);
    }
  }
}

void split_refusals(void **) {
  int64_t o, e;
  expect_error(wb_split(10, 0, 4, WB_SPLIT_EVEN, &o, &e), WB_E_SHAPE, "10");
  expect_error(wb_split(10, 4, 4, WB_SPLIT_CHUNK, &o, &e), WB_E_INVAL, "rank 4");
  expect_error(wb_split(10, 0, 0, WB_SPLIT_CHUNK, &o, &e), WB_E_INVAL, "ranks is 0");
  expect_error(wb_split(-1, 0, 4, WB_SPLIT_CHUNK, &o, &e), WB_E_INVAL, "size");
  expect_error(wb_split(10, 0, 4, 7, &o, &e), WB_E_INVAL, "mode");
  expect_error(wb_split(10, 0, 4, WB_SPLIT_CHUNK, nullptr, &e), WB_E_INVAL, "NULL");
}

struct VocabRow {
  int64_t vocab;
  int64_t pad_to;
  uint32_t rank;
  uint32_t ranks;
  int64_t offset, extent, padded;
};

void vocab_splits_pad_as_vllm_does(void **) {
  const VocabRow rows[] = {
      {151936, 64, 0, 2, 0, 75968, 75968},     {151936, 64, 1, 2, 75968, 75968, 75968},
      {151936, 64, 3, 4, 113952, 37984, 37984}, {151936, 64, 15, 16, 142440, 9496, 9496},
      {32001, 64, 0, 2, 0, 16032, 16032},       {32001, 64, 1, 2, 16032, 15969, 16032},
      {32001, 64, 3, 4, 24048, 7953, 8016},     {10, 4, 1, 2, 6, 4, 6},
      {10, 4, 2, 4, 6, 3, 3},                   {10, 4, 3, 4, 9, 1, 3},
  };
  for (const VocabRow &row : rows) {
    int64_t offset = -1, extent = -1, padded = -1;
    assert_int_equal(wb_split_vocab(row.vocab, row.pad_to, row.rank, row.ranks, &offset, &extent, &padded), WB_OK);
    assert_int_equal(offset, row.offset);
    assert_int_equal(extent, row.extent);
    assert_int_equal(padded, row.padded);
  }
  // A rank past the real vocabulary holds padding only.
  int64_t offset, extent, padded;
  assert_int_equal(wb_split_vocab(3, 64, 1, 2, &offset, &extent, &padded), WB_OK);
  assert_int_equal(offset, 3);
  assert_int_equal(extent, 0);
  assert_int_equal(padded, 32);
}

void vocab_refusals(void **) {
  int64_t o, e, p;
  expect_error(wb_split_vocab(32001, 64, 0, 5, &o, &e, &p), WB_E_SHAPE, "32064");
  expect_error(wb_split_vocab(0, 64, 0, 2, &o, &e, &p), WB_E_INVAL, "vocab");
  expect_error(wb_split_vocab(100, 0, 0, 2, &o, &e, &p), WB_E_INVAL, "pad_to");
  expect_error(wb_split_vocab(100, 64, 2, 2, &o, &e, &p), WB_E_INVAL, "rank 2");
  expect_error(wb_split_vocab(100, 64, 0, 2, &o, &e, nullptr), WB_E_INVAL, "NULL");
}

struct QkvRow {
  uint32_t rank, ranks;
  int64_t q_first, q_rows, kv_first, kv_rows;
};

void qkv_parts_follow_gqa(void **) {
  // 32 query heads, 8 KV heads, head_dim 128, hidden 4096.
  const QkvRow rows[] = {
      {0, 2, 0, 2048, 0, 512},        {1, 2, 2048, 2048, 512, 512},   {3, 4, 3072, 1024, 768, 256},
      {0, 16, 0, 256, 0, 128},        {1, 16, 256, 256, 0, 128},      {5, 16, 1280, 256, 256, 128},
      {15, 16, 3840, 256, 896, 128},  {7, 8, 3584, 512, 896, 128},
  };
  for (const QkvRow &row : rows) {
    wb_slice_part out[3];
    assert_int_equal(wb_parts_qkv("q", "k", "v", 32, 8, 128, 4096, row.rank, row.ranks, out), WB_OK);
    const int64_t firsts[3] = {row.q_first, row.kv_first, row.kv_first};
    const int64_t counts[3] = {row.q_rows, row.kv_rows, row.kv_rows};
    const char *names[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; ++i) {
      assert_int_equal(out[i].struct_size, sizeof(wb_slice_part));
      assert_string_equal(out[i].name, names[i]);
      assert_int_equal(out[i].ndim, 2);
      assert_int_equal(out[i].offset[0], firsts[i]);
      assert_int_equal(out[i].extent[0], counts[i]);
      assert_int_equal(out[i].offset[1], 0);
      assert_int_equal(out[i].extent[1], 4096);
      assert_int_equal(out[i].pad, 0);
    }
  }
}

void qkv_refusals(void **) {
  wb_slice_part out[3];
  expect_error(wb_parts_qkv("q", "k", "v", 32, 8, 128, 4096, 0, 3, out), WB_E_SHAPE, "32 query heads");
  expect_error(wb_parts_qkv("q", "k", "v", 32, 6, 128, 4096, 0, 4, out), WB_E_SHAPE, "6 KV heads");
  expect_error(wb_parts_qkv("q", "k", "v", 48, 8, 128, 4096, 0, 12, out), WB_E_SHAPE, "12 ranks");
  expect_error(wb_parts_qkv("q", "k", "v", 32, 0, 128, 4096, 0, 2, out), WB_E_INVAL, "kv_heads 0");
  expect_error(wb_parts_qkv("q", "k", "v", 32, 8, 128, 4096, 2, 2, out), WB_E_INVAL, "rank 2");
  expect_error(wb_parts_qkv("q", nullptr, "v", 32, 8, 128, 4096, 0, 2, out), WB_E_INVAL, "NULL");
}

void merged_parts_take_each_tensors_rows(void **) {
  const char *names[2] = {"gate", "up"};
  const int64_t rows[2] = {12288, 4096};
  wb_slice_part out[2];
  assert_int_equal(wb_parts_merged(names, rows, 2, 4096, 3, 4, out), WB_OK);
  assert_string_equal(out[0].name, "gate");
  assert_int_equal(out[0].offset[0], 9216);
  assert_int_equal(out[0].extent[0], 3072);
  assert_string_equal(out[1].name, "up");
  assert_int_equal(out[1].offset[0], 3072);
  assert_int_equal(out[1].extent[0], 1024);
  for (int i = 0; i < 2; ++i) {
    assert_int_equal(out[i].ndim, 2);
    assert_int_equal(out[i].offset[1], 0);
    assert_int_equal(out[i].extent[1], 4096);
  }
}

void merged_refusals(void **) {
  const char *names[2] = {"gate", "up"};
  const int64_t rows[2] = {12288, 4098};
  wb_slice_part out[2];
  expect_error(wb_parts_merged(names, rows, 2, 4096, 0, 4, out), WB_E_SHAPE, "'up' has 4098 rows");
  expect_error(wb_parts_merged(names, rows, 0, 4096, 0, 4, out), WB_E_INVAL, "n is 0");
  expect_error(wb_parts_merged(names, rows, 2, 4096, 4, 4, out), WB_E_INVAL, "rank 4");
  expect_error(wb_parts_merged(nullptr, rows, 2, 4096, 0, 4, out), WB_E_INVAL, "NULL");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(splits_follow_even_and_chunk),  cmocka_unit_test(split_refusals),
      cmocka_unit_test(vocab_splits_pad_as_vllm_does), cmocka_unit_test(vocab_refusals),
      cmocka_unit_test(qkv_parts_follow_gqa),          cmocka_unit_test(qkv_refusals),
      cmocka_unit_test(merged_parts_take_each_tensors_rows), cmocka_unit_test(merged_refusals),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
