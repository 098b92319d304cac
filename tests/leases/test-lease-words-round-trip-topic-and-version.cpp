// A lease word (core/lease.hpp) packs a topic and a version into one 64-bit word that one atomic store
// publishes: every row packs to its exact word, never to 0 (a free word), and unpacks to its topic and version,
// at every field's limits; distinct rows give distinct words; every topic a segment can hold fits the 16 bits.
#include <cstdint>
#include <vector>

#include "layout.hpp"
#include "lease.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

constexpr uint32_t kLastTopic = wb::shm::kCapacityLimits.max_topics - 1;

struct Row {
  const char *what;
  uint32_t topic;
  uint64_t version;
  uint64_t word;
};

const std::vector<Row> kRows = {
    {"topic 0, version 0 (nothing published yet)", 0, 0, 0x0001'0000'0000'0000},
    {"topic 0, version 1", 0, 1, 0x0001'0000'0000'0001},
    {"topic 0, the last version", 0, WB_VERSION_MAX, 0x0001'FFFF'FFFF'FFFF},
    {"topic 1, version 0", 1, 0, 0x0002'0000'0000'0000},
    {"a version with only its top bit set", 7, uint64_t{1} << 47, 0x0008'8000'0000'0000},
    {"the last version but one", 7, WB_VERSION_MAX - 1, 0x0008'FFFF'FFFF'FFFE},
    {"the last topic a segment holds, version 0", kLastTopic, 0, uint64_t{kLastTopic + 1} << 48},
    {"the last topic a segment holds, the last version", kLastTopic, WB_VERSION_MAX,
     uint64_t{kLastTopic + 1} << 48 | WB_VERSION_MAX},
    {"the largest topic the 16 bits hold, the last version", 0xFFFE, WB_VERSION_MAX, 0xFFFF'FFFF'FFFF'FFFF},
};

void every_row_packs_to_its_word_and_back(void **) {
  for (const Row &row : kRows) {
    uint64_t word = wb::lease::pack(row.topic, row.version);
    if (word != row.word)
      fail_msg("%s: packed 0x%016llx, expected 0x%016llx", row.what, (unsigned long long)word,
               (unsigned long long)row.word);
    if (word == 0) fail_msg("%s: packed to 0, the free word", row.what);
    if (wb::lease::topic_of(word) != row.topic)
      fail_msg("%s: topic_of gave %u, expected %u", row.what, wb::lease::topic_of(word), row.topic);
    if (wb::lease::version_of(word) != row.version)
      fail_msg("%s: version_of gave %llu, expected %llu", row.what,
               (unsigned long long)wb::lease::version_of(word), (unsigned long long)row.version);
  }
}

void distinct_rows_pack_to_distinct_words(void **) {
  for (size_t i = 0; i < kRows.size(); ++i) {
    for (size_t j = i + 1; j < kRows.size(); ++j) {
      if (wb::lease::pack(kRows[i].topic, kRows[i].version) == wb::lease::pack(kRows[j].topic, kRows[j].version))
        fail_msg("'%s' and '%s' pack to the same word", kRows[i].what, kRows[j].what);
    }
  }
}

// The widths the packing relies on: versions are 48 bits, and topic + 1 of every topic a segment can hold fits
// in the 16 above them (so no used word is 0 and none wraps).
void every_topic_and_version_fits_its_field(void **) {
  assert_int_equal(WB_VERSION_MAX, (uint64_t{1} << 48) - 1);
  assert_true(uint64_t{wb::shm::kCapacityLimits.max_topics} <= 0xFFFF);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_row_packs_to_its_word_and_back),
      cmocka_unit_test(distinct_rows_pack_to_distinct_words),
      cmocka_unit_test(every_topic_and_version_fits_its_field),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
