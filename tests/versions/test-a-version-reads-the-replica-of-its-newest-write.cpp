// Which replica of a tensor a version reads (core/replica.hpp, replica_for_version): the one whose write is the
// newest not after the version; a write in place (R = 1, kWritingBit) counts as its version; replicas never
// written are skipped; of equal writes the last replica; replica 0 when every write is newer. Each row a
// tensor's replica versions and the version read, with the replica expected. A rank's word for a version
// (rank_replica_word) names the replica of all its shards for that version only, and a mixed one none.
#include <cstdint>
#include <vector>

#include "layout.hpp"
#include "replica.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

using wb::shm::kWritingBit;
constexpr uint64_t N = wb::shm::kNeverWritten;
constexpr uint64_t kLast = WB_VERSION_MAX;

struct Row {
  const char *what;
  uint64_t replica_version[WB_MAX_REPLICAS];  // past the topic's R never written, as the broker leaves them
  uint64_t version;
  uint32_t replica;
};

const std::vector<Row> kRows = {
    // A tensor as the broker creates it: replica 0 holds the zeros of version 0.
    {"fresh tensor, version 0", {0, N, N, N}, 0, 0},
    {"fresh tensor, a later version (never rewritten)", {0, N, N, N}, 7, 0},
    // R = 1: one replica, rewritten in place.
    {"R = 1, its version", {5, N, N, N}, 5, 0},
    {"R = 1, a later version", {5, N, N, N}, 9, 0},
    {"R = 1, being written in place by 6", {kWritingBit | 6, N, N, N}, 6, 0},
    {"R = 1, the last version", {kLast, N, N, N}, kLast, 0},
    // R = 2: the two replicas alternate.
    {"R = 2, the newer write", {4, 5, N, N}, 5, 1},
    {"R = 2, the older write", {4, 5, N, N}, 4, 0},
    {"R = 2, a version after both", {4, 5, N, N}, 100, 1},
    {"R = 2, swapped: the newer write", {5, 4, N, N}, 5, 0},
    {"R = 2, swapped: the older write", {5, 4, N, N}, 4, 1},
    {"R = 2, between the writes", {2, 8, N, N}, 5, 0},
    {"R = 2, every write newer: replica 0", {4, 5, N, N}, 3, 0},
    {"R = 2, version 0 and the first publish", {0, 1, N, N}, 0, 0},
    {"R = 2, the first publish", {0, 1, N, N}, 1, 1},
    {"R = 2, equal writes: the last", {5, 5, N, N}, 5, 1},
    {"R = 2, the last version and the one before", {kLast - 1, kLast, N, N}, kLast, 1},
    {"R = 2, the one before the last", {kLast - 1, kLast, N, N}, kLast - 1, 0},
    {"R = 2, only replica 1 written", {N, 3, N, N}, 3, 1},
    {"R = 2, only replica 1 written, an older version: replica 0", {N, 3, N, N}, 2, 0},
    // R = 3.
    {"R = 3, the middle write", {1, 2, 3, N}, 2, 1},
    {"R = 3, the newest write", {1, 2, 3, N}, 3, 2},
    {"R = 3, rotated: the middle write", {3, 1, 2, N}, 2, 2},
    {"R = 3, rotated: the oldest write", {3, 1, 2, N}, 1, 1},
    {"R = 3, one never written", {3, 1, N, N}, 2, 1},
    {"R = 3, an unpublished write (a dead publish) is skipped", {4, 6, 5, N}, 5, 2},
    {"R = 3, all older: the newest of them", {1, 3, 2, N}, 50, 1},
    {"R = 3, all newer: replica 0", {7, 8, 9, N}, 6, 0},
    {"R = 3, only the last written", {N, N, 7, N}, 7, 2},
    // R = WB_MAX_REPLICAS.
    {"R = 4, the second newest", {10, 13, 11, 12}, 12, 3},
    {"R = 4, after all", {10, 13, 11, 12}, 20, 1},
};

void each_row_reads_its_replica(void **) {
  for (const Row &row : kRows) {
    wb::shm::Tensor root{};
    for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) root.replica_version[r].store(row.replica_version[r]);
    uint32_t replica = wb::replica_for_version(root, row.version);
    if (replica != row.replica) fail_msg("%s: replica %u, expected %u", row.what, replica, row.replica);
  }
}

void a_rank_word_names_one_replica_of_its_own_version(void **) {
  using wb::rank_replica_of;
  constexpr uint32_t kNone = wb::shm::kNone;
  for (uint32_t replica = 0; replica < WB_MAX_REPLICAS; ++replica) {
    for (uint64_t version : {uint64_t{1}, uint64_t{41}, kLast}) {
      uint64_t word = wb::rank_replica_word(version, replica);
      assert_int_equal(rank_replica_of(word, version), replica);
      assert_int_equal(rank_replica_of(word, version - 1), kNone);  // another version's (the ring's slot reused)
      assert_int_equal(rank_replica_of(word, version + 4), kNone);
      assert_int_equal(rank_replica_of(wb::rank_mixed_word(version), version), kNone);
    }
  }
  assert_int_equal(rank_replica_of(0, 1), kNone);  // never written
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(each_row_reads_its_replica),
                                     cmocka_unit_test(a_rank_word_names_one_replica_of_its_own_version)};
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
