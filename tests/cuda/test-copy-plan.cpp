// The copy kernel's plan (libclient/cuda/copy_plan.cpp), without a GPU: which copies the kernel takes (small
// ones it can reach; host, empty, large and unreachable ones not, the reachability asked of candidates only),
// the chunks that spread each copy over blocks, launches that grow from kFirstLaunchCopies to the parameter
// space's limit and are handed over as soon as they are full, every copy kept in order, and a launch's error
// ending the plan.
#include <functional>
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
using wb::cuda::kFirstLaunchCopies;
using wb::cuda::kKernelMaxBytes;
using wb::cuda::KernelLaunch;

namespace {

struct CopyPlan {
  std::vector<KernelLaunch> launches;  // as handed to launch(), in order
  std::vector<Copy> per_copy;
  std::vector<size_t> reach_asked_before_launch;  // how many reachability checks preceded each launch
};

CopyPlan plan_copies(const std::vector<Copy> &copies, const std::function<bool(const Copy &)> &reaches) {
  CopyPlan plan;
  size_t asked = 0;
  int rc = wb::cuda::plan_copies(
      copies,
      [&](const Copy &c) {
        ++asked;
        return reaches(c);
      },
      [&](const KernelLaunch &l) {
        plan.launches.push_back(l);
        plan.reach_asked_before_launch.push_back(asked);
        return 0;
      },
      &plan.per_copy);
  assert_int_equal(rc, 0);
  return plan;
}

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
  for (const KernelLaunch &l : plan.launches) {
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

void launches_grow_to_the_parameters_limit_and_leave_at_once(void **) {
  const std::vector<uint32_t> sizes = {kFirstLaunchCopies,     2 * kFirstLaunchCopies, 4 * kFirstLaunchCopies,
                                       8 * kFirstLaunchCopies, WB_COPY_MAX_COPIES,     WB_COPY_MAX_COPIES, 272};
  uint32_t n = 0;
  for (uint32_t size : sizes) n += size;
  std::vector<Copy> copies;
  for (uint64_t i = 0; i < n; ++i) copies.push_back(gpu_copy(i, 1 + i % 3 * WB_COPY_CHUNK_BYTES));
  CopyPlan plan = plan_copies(copies, [](const Copy &) { return true; });
  check_launches(plan);
  assert_int_equal(plan.launches.size(), sizes.size());
  size_t before = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    assert_int_equal(plan.launches[k].params.count, sizes[k]);
    // Handed over once its last copy was checked, before the next copy is.
    before += sizes[k];
    assert_int_equal(plan.reach_asked_before_launch[k], before);
  }
  uint64_t i = 0;  // every copy once, in order, across the launches
  for (const KernelLaunch &l : plan.launches) {
    for (uint32_t k = 0; k < l.params.count; ++k, ++i) {
      assert_int_equal(l.params.copies[k].src, reinterpret_cast<uintptr_t>(copies[i].src));
    }
  }
  assert_int_equal(i, n);
  assert_true(plan.per_copy.empty());
}

void a_launch_error_ends_the_plan(void **) {
  std::vector<Copy> copies;
  for (uint64_t i = 0; i < 3 * kFirstLaunchCopies; ++i) copies.push_back(gpu_copy(i, 10));
  copies.push_back(gpu_copy(copies.size(), kKernelMaxBytes));
  int launches = 0;
  std::vector<Copy> per_copy;
  int rc = wb::cuda::plan_copies(
      copies, [](const Copy &) { return true; },
      [&](const KernelLaunch &) {
        ++launches;
        return 7;
      },
      &per_copy);
  assert_int_equal(rc, 7);
  assert_int_equal(launches, 1);
  assert_true(per_copy.empty());
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
      cmocka_unit_test(launches_grow_to_the_parameters_limit_and_leave_at_once),
      cmocka_unit_test(a_launch_error_ends_the_plan),
      cmocka_unit_test(without_the_kernel_every_gpu_copy_stays_per_copy),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
