// The plan kernel's program (libclient/cuda/plan_program.cpp), without a GPU: how copies are cut into chunks
// (several narrow rows a chunk, wide rows in pieces), which copies a descriptor holds, and that launches keep the
// copies' order, number their chunks from 0, pass each source once, grow from a small first launch, and split at
// the sources' and chunks' limits.
// A model of the kernel's walk over the chunks (as copy_kernel.cu does it) copies host memory from a program, so
// that every byte of every copy is shown to be written exactly once, for strided and plain copies of odd sizes.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "plan_program.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

using wb::cuda::chunk_shape;
using wb::cuda::kernel_holds;
using wb::cuda::make_program;
using wb::cuda::PlanCopy;
using wb::cuda::PlanProgram;

namespace {

constexpr uint64_t kChunk = WB_COPY_CHUNK_BYTES;

struct Shape {
  uint32_t rows_per_chunk, pieces;
  uint64_t chunks;
};

Shape shape_of(uint64_t row_bytes, uint64_t rows) {
  Shape s{};
  chunk_shape(row_bytes, rows, &s.rows_per_chunk, &s.pieces, &s.chunks);
  return s;
}

void narrow_rows_share_a_chunk_and_wide_ones_are_cut(void **) {
  Shape s = shape_of(4096, 1024);  // o_proj's half rows: 16 a chunk
  assert_int_equal(s.rows_per_chunk, 16);
  assert_int_equal(s.pieces, 1);
  assert_int_equal(s.chunks, 64);
  s = shape_of(12288, 1024);  // down_proj's: 5 a chunk, the last chunk short
  assert_int_equal(s.rows_per_chunk, 5);
  assert_int_equal(s.chunks, 205);
  s = shape_of(kChunk / 2, 3);  // half a chunk still shares
  assert_int_equal(s.rows_per_chunk, 2);
  assert_int_equal(s.chunks, 2);
  s = shape_of(kChunk / 2 + 1, 3);  // past half: a row a chunk
  assert_int_equal(s.rows_per_chunk, 1);
  assert_int_equal(s.pieces, 1);
  assert_int_equal(s.chunks, 3);
  s = shape_of(kChunk + 1, 3);  // past a chunk: two pieces a row
  assert_int_equal(s.pieces, 2);
  assert_int_equal(s.chunks, 6);
  s = shape_of(uint64_t(16) << 20, 1);  // a plain 16 MiB copy
  assert_int_equal(s.pieces, 256);
  assert_int_equal(s.chunks, 256);
  s = shape_of(1, 1);
  assert_int_equal(s.rows_per_chunk, kChunk);
  assert_int_equal(s.chunks, 1);
}

void descriptors_hold_non_empty_copies_within_32_bits(void **) {
  PlanCopy c;
  c.row_bytes = 64;
  c.rows = 1;
  assert_true(kernel_holds(c));
  c.rows = 0;
  assert_false(kernel_holds(c));
  c.rows = 1;
  c.row_bytes = 0;
  assert_false(kernel_holds(c));
  c.row_bytes = 8;
  c.rows = uint64_t(UINT32_MAX) + 1;  // rows are 32-bit
  assert_false(kernel_holds(c));
  c.row_bytes = kChunk;
  c.rows = uint64_t(1) << 31;  // 2^31 chunks: one past a launch's
  assert_false(kernel_holds(c));
  c.rows = (uint64_t(1) << 31) - 1;
  assert_true(kernel_holds(c));
}

PlanCopy copy(uint32_t source, uint64_t row_bytes, uint64_t rows = 1) {
  PlanCopy c;
  c.source = source;
  c.row_bytes = row_bytes;
  c.rows = rows;
  c.src_pitch = c.dst_pitch = row_bytes;
  return c;
}

void launches_keep_order_and_pass_each_source_once(void **) {
  std::vector<PlanCopy> copies = {copy(7, 100), copy(3, kChunk * 3), copy(7, 4096, 64), copy(9, 1)};
  PlanProgram p = make_program(copies);
  assert_int_equal(p.launches.size(), 1);
  assert_int_equal(p.launches[0].first, 0);
  assert_int_equal(p.launches[0].count, 4);
  assert_int_equal(p.launches[0].chunks, 1 + 3 + 4 + 1);
  assert_true((p.launches[0].sources == std::vector<uint32_t>{7, 3, 9}));
  assert_true((p.first_chunks == std::vector<uint32_t>{0, 1, 4, 8}));
  assert_true((p.origin == std::vector<uint32_t>{0, 1, 2, 3}));
  assert_int_equal(p.copies[0].source, 0);
  assert_int_equal(p.copies[2].source, 0);  // source 7 again: the same slot of the launch's sources
  assert_int_equal(p.copies[3].source, 2);
  assert_int_equal(p.copies[2].rows, 64);
  assert_int_equal(p.copies[2].rows_per_chunk, 16);
  assert_int_equal(p.copies[1].pieces, 3);
}

void a_launch_ends_at_its_sources_limit(void **) {
  std::vector<PlanCopy> copies = {copy(0, 8), copy(1, 8), copy(0, 8), copy(2, 8), copy(2, 8), copy(1, 8)};
  PlanProgram p = make_program(copies, 2, 2);
  assert_int_equal(p.launches.size(), 2);
  assert_int_equal(p.launches[0].count, 3);  // sources 0 and 1; source 2 opens the next launch
  assert_true((p.launches[0].sources == std::vector<uint32_t>{0, 1}));
  assert_int_equal(p.launches[1].first, 3);
  assert_int_equal(p.launches[1].count, 3);
  assert_true((p.launches[1].sources == std::vector<uint32_t>{2, 1}));
  assert_int_equal(p.first_chunks[3], 0);  // counted from the launch's first block
  assert_int_equal(p.copies[5].source, 1);
}

void launches_grow_from_the_first_to_the_most_sources(void **) {
  std::vector<PlanCopy> copies;
  for (uint32_t source = 0; source < 7; ++source) copies.push_back(copy(source, 8));
  PlanProgram p = make_program(copies, 1, 3);  // 1, 2, then 3 (not 4) sources a launch
  assert_int_equal(p.launches.size(), 4);
  assert_true((p.launches[0].sources == std::vector<uint32_t>{0}));
  assert_true((p.launches[1].sources == std::vector<uint32_t>{1, 2}));
  assert_true((p.launches[2].sources == std::vector<uint32_t>{3, 4, 5}));
  assert_true((p.launches[3].sources == std::vector<uint32_t>{6}));
  p = make_program(copies);  // the library's: all seven in the first launch
  assert_int_equal(p.launches.size(), 1);
  assert_true(wb::cuda::kFirstLaunchSources >= 7);
}

// plan_run.cpp's two programs of one plan: `ramped` (the default shares) for runs from the host, and `whole`
// (every launch's share the most) for armed runs, whose launches are all enqueued before the version.
void an_armed_runs_program_has_as_few_launches_as_the_kernel_allows(void **) {
  std::vector<PlanCopy> copies;
  for (uint32_t source = 0; source < 1000; ++source) copies.push_back(copy(source, kChunk));
  PlanProgram ramped = make_program(copies);
  assert_int_equal(ramped.launches.size(), 5);  // 64, 128, 256, 512, then the last 40
  assert_int_equal(ramped.launches[4].sources.size(), 40);
  PlanProgram whole = make_program(copies, WB_PLAN_MAX_SOURCES);
  assert_int_equal(whole.launches.size(), 1);
  assert_int_equal(whole.launches[0].chunks, 1000);
  for (uint32_t source = 1000; source <= WB_PLAN_MAX_SOURCES; ++source) copies.push_back(copy(source, 8));
  whole = make_program(copies, WB_PLAN_MAX_SOURCES);
  assert_int_equal(whole.launches.size(), 2);  // the kernel's room for sources is full at 4,000
  assert_int_equal(whole.launches[0].sources.size(), WB_PLAN_MAX_SOURCES);
  assert_int_equal(whole.launches[1].sources.size(), 1);
}

void a_launch_ends_before_2_to_the_31_chunks(void **) {
  std::vector<PlanCopy> copies = {copy(0, kChunk, uint64_t(1) << 30), copy(0, kChunk, uint64_t(1) << 30)};
  PlanProgram p = make_program(copies);
  assert_int_equal(p.launches.size(), 2);
  assert_int_equal(p.launches[0].chunks, uint64_t(1) << 30);
  assert_int_equal(p.launches[1].chunks, uint64_t(1) << 30);
}

// The kernel's walk (copy_kernel.cu, wb_copy_plan), on the host: every block's chunk, found as the kernel finds
// it, copied byte by byte, each destination byte counted.
void run_model(const PlanProgram &p, const std::vector<const char *> &sources, const char *dst_base,
               std::vector<uint8_t> *writes) {
  for (const wb::cuda::PlanLaunch &l : p.launches) {
    for (uint32_t block = 0; block < l.chunks; ++block) {
      uint32_t lo = 0, hi = l.count - 1;
      while (lo < hi) {
        const uint32_t mid = (lo + hi + 1) / 2;
        if (p.first_chunks[l.first + mid] <= block) {
          lo = mid;
        } else {
          hi = mid - 1;
        }
      }
      const wb_plan_copy &c = p.copies[l.first + lo];
      const uint32_t k = block - p.first_chunks[l.first + lo];
      const char *src = sources[l.sources[c.source]] + c.src_offset;
      char *dst = reinterpret_cast<char *>(c.dst);
      uint64_t row0, rows, begin, n;
      if (c.rows_per_chunk == 1) {
        row0 = k / c.pieces;
        rows = 1;
        begin = uint64_t(k - row0 * c.pieces) * kChunk;
        n = std::min<uint64_t>(c.row_bytes - begin, kChunk);
      } else {
        row0 = uint64_t(k) * c.rows_per_chunk;
        rows = std::min<uint64_t>(c.rows_per_chunk, c.rows - row0);
        begin = 0;
        n = c.row_bytes;
      }
      for (uint64_t r = row0; r < row0 + rows; ++r) {
        char *to = dst + r * c.dst_pitch + begin;
        memcpy(to, src + r * c.src_pitch + begin, n);
        for (uint64_t b = 0; b < n; ++b) (*writes)[to - dst_base + b]++;
      }
    }
  }
}

void the_chunks_write_every_byte_once(void **) {
  std::mt19937 random(19);
  for (int round = 0; round < 40; ++round) {
    // Sources of random bytes; copies of random shapes (odd widths, pitches, rows; some over a chunk wide)
    // from random sources into consecutive regions of one destination.
    std::vector<std::vector<char>> data(1 + random() % 5);
    for (auto &d : data) {
      d.resize(1 + random() % (3 * kChunk));
      for (char &b : d) b = char(random());
    }
    std::vector<PlanCopy> copies;
    std::vector<char> dst(8 * kChunk * 8);
    uint64_t used = 0;
    while (copies.size() < 12) {
      PlanCopy c;
      c.source = uint32_t(random() % data.size());
      const uint64_t size = data[c.source].size();
      c.row_bytes = 1 + random() % std::min<uint64_t>(size, random() % 2 ? 300 : 2 * kChunk);
      c.src_pitch = c.row_bytes + random() % 50;
      c.rows = 1 + random() % std::max<uint64_t>(1, std::min<uint64_t>(size / c.src_pitch, 200));
      if ((c.rows - 1) * c.src_pitch + c.row_bytes > size) c.rows = 1;
      c.src_offset = random() % (size - ((c.rows - 1) * c.src_pitch + c.row_bytes) + 1);
      c.dst_pitch = c.row_bytes;
      if (used + c.row_bytes * c.rows > dst.size()) break;
      c.dst = dst.data() + used;
      used += c.row_bytes * c.rows;
      copies.push_back(c);
    }
    PlanProgram p = make_program(copies, 1 + random() % 3, 2 + random() % 3);
    std::vector<const char *> sources;
    for (auto &d : data) sources.push_back(d.data());
    std::vector<uint8_t> writes(used);
    run_model(p, sources, dst.data(), &writes);
    assert_true(std::all_of(writes.begin(), writes.end(), [](uint8_t w) { return w == 1; }));
    uint64_t at = 0;
    for (const PlanCopy &c : copies) {
      for (uint64_t r = 0; r < c.rows; ++r, at += c.row_bytes) {
        assert_memory_equal(dst.data() + at, data[c.source].data() + c.src_offset + r * c.src_pitch, c.row_bytes);
      }
    }
  }
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(narrow_rows_share_a_chunk_and_wide_ones_are_cut),
      cmocka_unit_test(descriptors_hold_non_empty_copies_within_32_bits),
      cmocka_unit_test(launches_keep_order_and_pass_each_source_once),
      cmocka_unit_test(a_launch_ends_at_its_sources_limit),
      cmocka_unit_test(launches_grow_from_the_first_to_the_most_sources),
      cmocka_unit_test(an_armed_runs_program_has_as_few_launches_as_the_kernel_allows),
      cmocka_unit_test(a_launch_ends_before_2_to_the_31_chunks),
      cmocka_unit_test(the_chunks_write_every_byte_once),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
