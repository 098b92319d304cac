// The bucket plan: tensors packed back to back, split across buckets when larger than the space left, exact
// fits, many small tensors in one bucket, zero-byte tensors skipped; every byte of every tensor lands once.
#include <numeric>

#include "bucket_plan.hpp"
#include "check.hpp"

using namespace wbrelay;

namespace {

// Every byte of every item appears exactly once, in order, and no bucket exceeds the size.
void check_covers(const std::vector<uint64_t> &items, const std::vector<Bucket> &plan, uint64_t size) {
  std::vector<uint64_t> next(items.size(), 0);
  for (const Bucket &b : plan) {
    uint64_t at = 0;
    CHECK(b.bytes > 0 && b.bytes <= size);
    for (const Piece &p : b.pieces) {
      CHECK(p.bucket_offset == at);
      CHECK(p.item_offset == next[p.item]);
      CHECK(p.bytes > 0);
      next[p.item] += p.bytes;
      at += p.bytes;
    }
    CHECK(at == b.bytes);
  }
  CHECK(next == items);
  uint64_t total = std::accumulate(items.begin(), items.end(), uint64_t{0});
  for (size_t k = 0; k + 1 < plan.size(); ++k) CHECK(plan[k].bytes == size);  // only the last is partial
  CHECK(plan.size() == (total + size - 1) / size);
}

void larger_than_a_bucket() {
  std::vector<uint64_t> items = {10, 2500, 7};
  auto plan = plan_buckets(items, 1000);
  check_covers(items, plan, 1000);
  CHECK(plan.size() == 3);
  CHECK(plan[0].pieces.size() == 2 && plan[0].pieces[1].bytes == 990);
  CHECK(plan[2].pieces.size() == 2 && plan[2].pieces[0].item_offset == 1990 && plan[2].pieces[1].item == 2);
}

void exact_fits() {
  std::vector<uint64_t> items = {1000, 500, 500, 1000};
  auto plan = plan_buckets(items, 1000);
  check_covers(items, plan, 1000);
  CHECK(plan.size() == 3);
  CHECK(plan[0].pieces.size() == 1 && plan[1].pieces.size() == 2 && plan[2].pieces.size() == 1);
  plan = plan_buckets({3000}, 1000);
  CHECK(plan.size() == 3 && plan[2].pieces[0].item_offset == 2000);
}

void many_small_tensors() {
  std::vector<uint64_t> items(10000, 3);
  auto plan = plan_buckets(items, 1 << 20);
  check_covers(items, plan, 1 << 20);
  CHECK(plan.size() == 1 && plan[0].pieces.size() == 10000 && plan[0].bytes == 30000);
  plan = plan_buckets(items, 7);  // pieces straddle every bucket boundary
  check_covers(items, plan, 7);
}

void empty_and_zero_bytes() {
  CHECK(plan_buckets({}, 100).empty());
  CHECK(plan_buckets({0, 0}, 100).empty());
  auto plan = plan_buckets({0, 5, 0, 5}, 100);
  CHECK(plan.size() == 1 && plan[0].pieces.size() == 2 && plan[0].pieces[1].item == 3);
  plan = plan_buckets({1, 1, 1}, 1);  // one-byte buckets
  CHECK(plan.size() == 3);
}

}  // namespace

int main() {
  larger_than_a_bucket();
  exact_fits();
  many_small_tensors();
  empty_and_zero_bytes();
  std::printf("%s\n", g_failures == 0 ? "bucket plan: all passed" : "bucket plan: FAILED");
  return g_failures;
}
