// The copy kernel's plan (libclient/cuda/copy_plan.cpp), without a GPU: which copies the kernel takes (small
// ones it can reach; host, empty, large and unreachable ones not, the reachability asked of candidates only),
// the chunks that spread each copy over blocks, and launches split where the descriptors outgrow the
// parameter space, every copy kept in order.
#include <set>
#include <vector>

#include "copy_plan.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

using wb::cuda::Copy;
using wb::cuda::CopyPlan;
using wb::cuda::kKernelMaxBytes;
using wb::cuda::plan_copies;

namespace {

// A GPU copy of bytes whose src and dst encode i, so that each descriptor names the copy it came from.
Copy gpu_copy(uint64_t i, uint64_t bytes) {
  Copy c;
  c.src = reinterpret_cast<const char *>((i + 1) << 32);
  c.dst = reinterpret_cast<char *>((i + 1) << 40);
  c.bytes = bytes;
  c.cuda = true;
  return c;
}

uint32_t chunks(uint64_t bytes) { return uint32_t((bytes + WB_COPY_CHUNK_BYTES - 1) / WB_COPY_CHUNK_BYTES); }

// Every launch: 1..WB_COPY_MAX_COPIES copies, each starting where the chunks of those before it end, and a
// block per chunk.
void check_launches(const CopyPlan &plan) {
  for (const wb::cuda::KernelLaunch &l : plan.launches) {
    assert_in_range(l.params.count, 1, WB_COPY_MAX_COPIES);
    uint32_t next = 0;
    for (uint32_t i = 0; i < l.params.count; ++i) {
      assert_int_equal(l.params.copies[i].first_chunk, next);
      next += chunks(l.params.copies[i].bytes);
    }
    assert_int_equal(l.blocks, next);
  }
}

void only_small_reachable_gpu_copies_go_to_the_kernel(void **) {
  std::vector<Copy> copies = {gpu_copy(0, 154),  gpu_copy(1, kKernelMaxBytes),
                              gpu_copy(2, 0),    gpu_copy(3, kKernelMaxBytes - 1),
                              gpu_copy(4, 4096), gpu_copy(5, 1 << 20)};
  Copy host = gpu_copy(6, 100);
  host.cuda = false;
  copies.push_back(host);
  std::set<const char *> asked;
  const char *unreachable = copies[4].src;
  CopyPlan plan = plan_copies(copies, [&](const Copy &c) {
    asked.insert(c.src);
    return c.src != unreachable;
  });
  check_launches(plan);
  // Asked of the small non-empty GPU copies only.
  assert_true(asked == (std::set<const char *>{copies[0].src, copies[3].src, copies[4].src, copies[5].src}));
  assert_int_equal(plan.launches.size(), 1);
  const wb_copy_params &p = plan.launches[0].params;
  assert_int_equal(p.count, 3);
  const size_t taken[] = {0, 3, 5};
  for (uint32_t i = 0; i < 3; ++i) {
    const Copy &c = copies[taken[i]];
    assert_int_equal(p.copies[i].src, reinterpret_cast<uintptr_t>(c.src));
    assert_int_equal(p.copies[i].dst, reinterpret_cast<uintptr_t>(c.dst));
    assert_int_equal(p.copies[i].bytes, c.bytes);
  }
  // The large one and the unreachable one stay per copy, in order; the empty and the host copy are gone.
  assert_int_equal(plan.per_copy.size(), 2);
  assert_ptr_equal(plan.per_copy[0].src, copies[1].src);
  assert_ptr_equal(plan.per_copy[1].src, copies[4].src);
}

void copies_are_cut_into_chunks(void **) {
  std::vector<uint64_t> sizes = {154, WB_COPY_CHUNK_BYTES, WB_COPY_CHUNK_BYTES + 1, kKernelMaxBytes - 1, 1};
  std::vector<Copy> copies;
  for (uint64_t i = 0; i < sizes.size(); ++i) copies.push_back(gpu_copy(i, sizes[i]));
  CopyPlan plan = plan_copies(copies, [](const Copy &) { return true; });
  check_launches(plan);
  assert_int_equal(plan.launches.size(), 1);
  assert_true(plan.per_copy.empty());
  const wb_copy_params &p = plan.launches[0].params;
  std::vector<uint32_t> first;
  for (uint32_t i = 0; i < p.count; ++i) first.push_back(p.copies[i].first_chunk);
  // 1 chunk, 1, 2, 256 (16 MiB - 1 in 64 KiB chunks), then the last copy's 1.
  assert_true(first == (std::vector<uint32_t>{0, 1, 2, 4, 260}));
  assert_int_equal(plan.launches[0].blocks, 261);
}

void launches_split_where_the_parameters_are_full(void **) {
  const uint32_t n = 2 * WB_COPY_MAX_COPIES + 272;
  std::vector<Copy> copies;
  for (uint64_t i = 0; i < n; ++i) copies.push_back(gpu_copy(i, 1 + i % 3 * WB_COPY_CHUNK_BYTES));
  CopyPlan plan = plan_copies(copies, [](const Copy &) { return true; });
  check_launches(plan);
  assert_int_equal(plan.launches.size(), 3);
  assert_int_equal(plan.launches[0].params.count, WB_COPY_MAX_COPIES);
  assert_int_equal(plan.launches[1].params.count, WB_COPY_MAX_COPIES);
  assert_int_equal(plan.launches[2].params.count, 272);
  uint64_t i = 0;  // every copy once, in order, across the launches
  for (const wb::cuda::KernelLaunch &l : plan.launches) {
    for (uint32_t k = 0; k < l.params.count; ++k, ++i) {
      assert_int_equal(l.params.copies[k].src, reinterpret_cast<uintptr_t>(copies[i].src));
    }
  }
  assert_int_equal(i, n);
  assert_true(plan.per_copy.empty());
}

void without_the_kernel_every_gpu_copy_stays_per_copy(void **) {
  std::vector<Copy> copies = {gpu_copy(0, 10), gpu_copy(1, kKernelMaxBytes * 2), gpu_copy(2, 10)};
  CopyPlan plan = plan_copies(copies, [](const Copy &) { return false; });
  assert_true(plan.launches.empty());
  assert_int_equal(plan.per_copy.size(), 3);
  for (size_t i = 0; i < 3; ++i) assert_ptr_equal(plan.per_copy[i].src, copies[i].src);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(only_small_reachable_gpu_copies_go_to_the_kernel),
      cmocka_unit_test(copies_are_cut_into_chunks),
      cmocka_unit_test(launches_split_where_the_parameters_are_full),
      cmocka_unit_test(without_the_kernel_every_gpu_copy_stays_per_copy),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
