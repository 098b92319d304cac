// Whether the leases held on a topic keep its publisher's wb_update_begin waiting (core/replica.hpp,
// leases_block): with R = 1 any lease of a published version does, as the update writes in place, and a lease
// above the latest (an arm, wb_plan_arm) does not; with R >= 2 only more than R - 2
// distinct leased versions older than the latest do, as each pins one replica besides the latest's. Each row a
// topic's replicas, its latest version and the versions leased, with the decision expected.
#include <cstdint>
#include <vector>

#include "replica.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

struct Row {
  const char *what;
  uint32_t replicas;
  uint64_t latest;
  std::vector<uint64_t> leased;  // ascending, distinct, as lease::leased_versions gives them
  bool blocks;
};

const std::vector<Row> kRows = {
    // R = 1: the only replica is written in place, so every lease of a published version blocks; an arm of the
    // version being begun (latest + 1) does not, until that version is published.
    {"R = 1, no lease", 1, 5, {}, false},
    {"R = 1, nothing published, no lease", 1, 0, {}, false},
    {"R = 1, the latest leased", 1, 5, {5}, true},
    {"R = 1, an older version leased", 1, 5, {3}, true},
    {"R = 1, version 0 leased before the first publish", 1, 0, {0}, true},
    {"R = 1, the last version leased", 1, WB_VERSION_MAX, {WB_VERSION_MAX}, true},
    {"R = 1, the next version armed", 1, 5, {6}, false},
    {"R = 1, version 1 armed before the first publish", 1, 0, {1}, false},
    {"R = 1, the armed version once published", 1, 6, {6}, true},
    {"R = 1, the latest leased and the next armed", 1, 5, {5, 6}, true},
    {"R = 1, an arm of a version skipped (wb_update_set_version)", 1, 9, {6}, true},
    // R = 2: the latest's replica is never written; the other one is free unless an older version pins it.
    {"R = 2, no lease", 2, 5, {}, false},
    {"R = 2, the latest leased", 2, 5, {5}, false},
    {"R = 2, one older version leased", 2, 5, {4}, true},
    {"R = 2, one older and the latest leased", 2, 5, {4, 5}, true},
    {"R = 2, nothing published, version 0 leased", 2, 0, {0}, false},
    {"R = 2, version 0 leased after the first publish", 2, 1, {0}, true},
    {"R = 2, the last version leased", 2, WB_VERSION_MAX, {WB_VERSION_MAX}, false},
    {"R = 2, the last version but one leased", 2, WB_VERSION_MAX, {WB_VERSION_MAX - 1}, true},
    {"R = 2, a lease newer than the latest is not older", 2, 5, {6}, false},
    // R = 3: one older version may be pinned.
    {"R = 3, no lease", 3, 9, {}, false},
    {"R = 3, the latest leased", 3, 9, {9}, false},
    {"R = 3, one older version leased", 3, 9, {2}, false},
    {"R = 3, one older and the latest leased", 3, 9, {2, 9}, false},
    {"R = 3, two older versions leased", 3, 9, {2, 8}, true},
    {"R = 3, two older and the latest leased", 3, 9, {2, 8, 9}, true},
    {"R = 3, version 0 and one more leased", 3, 9, {0, 1}, true},
    // R = WB_MAX_REPLICAS: two older versions may be pinned.
    {"R = 4, two older versions leased", WB_MAX_REPLICAS, 9, {3, 7}, false},
    {"R = 4, three older versions leased", WB_MAX_REPLICAS, 9, {1, 3, 7}, true},
    {"R = 4, three older and the latest leased", WB_MAX_REPLICAS, 9, {1, 3, 7, 9}, true},
};

void each_row_blocks_as_expected(void **) {
  for (const Row &row : kRows) {
    bool blocks = wb::leases_block(row.leased, row.latest, row.replicas);
    if (blocks != row.blocks) fail_msg("%s: leases_block said %d, expected %d", row.what, blocks, row.blocks);
  }
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(each_row_blocks_as_expected)};
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
