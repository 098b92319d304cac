// Version bookkeeping: which tensors a sink needs from the version it holds, and which transfers bring a group
// of sinks holding various versions to the latest.
#include "bookkeeping.hpp"
#include "check.hpp"

using namespace wbrelay;

namespace {

void tensors_needed_from_held_version() {
  std::vector<uint64_t> written_by = {1, 5, 9, 0, 9};
  CHECK((tensors_needed(written_by, 0) == std::vector<uint32_t>{0, 1, 2, 3, 4}));  // nothing held: all
  CHECK((tensors_needed(written_by, 5) == std::vector<uint32_t>{2, 4}));
  CHECK((tensors_needed(written_by, 4) == std::vector<uint32_t>{1, 2, 4}));
  CHECK(tensors_needed(written_by, 9).empty());
  CHECK(tensors_needed({}, 3).empty());
}

void transfers_for_a_group() {
  CHECK(plan_transfers({}, 7).empty());
  CHECK(plan_transfers({7, 7, 7}, 7).empty());  // all current
  auto t = plan_transfers({6, 6}, 7);  // the steady state: one broadcast of what changed since 6
  CHECK(t.size() == 1 && t[0].broadcast && t[0].from == 6);
  t = plan_transfers({0}, 7);  // a first sink: one broadcast of everything
  CHECK(t.size() == 1 && t[0].broadcast && t[0].from == 0);
  t = plan_transfers({7, 0, 7}, 7);  // a late joiner: its own full transfer
  CHECK(t.size() == 1 && !t[0].broadcast && t[0].member == 1 && t[0].from == 0);
  t = plan_transfers({6, 3, 7}, 7);  // mixed, after a failure: each behind one gets its own
  CHECK(t.size() == 2 && !t[0].broadcast && t[0].member == 0 && t[0].from == 6 && t[1].member == 1 && t[1].from == 3);
}

}  // namespace

int main() {
  tensors_needed_from_held_version();
  transfers_for_a_group();
  std::printf("%s\n", g_failures == 0 ? "bookkeeping: all passed" : "bookkeeping: FAILED");
  return g_failures;
}
