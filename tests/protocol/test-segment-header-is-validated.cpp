// A client refuses a segment that is not a complete weightbus segment of its own layout.
#include <vector>

#include "layout.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace {

constexpr wb::shm::Capacities kCaps{4, 16, 4, 4, 4, 4, 4};

std::vector<uint64_t> valid_segment() {
  std::vector<uint64_t> words(wb::shm::compute_layout(kCaps).segment_size / sizeof(uint64_t));
  wb::shm::write_header(*reinterpret_cast<wb::shm::Header *>(words.data()), kCaps, 0, 0);
  return words;
}

wb::shm::Header &header(std::vector<uint64_t> &words) { return *reinterpret_cast<wb::shm::Header *>(words.data()); }

int validate(std::vector<uint64_t> &words, uint64_t size) { return wb::shm::validate_header(words.data(), size); }

void a_complete_segment_is_accepted(void **) {
  auto words = valid_segment();
  assert_int_equal(validate(words, words.size() * 8), WB_OK);
}

void a_segment_smaller_than_a_header_is_refused(void **) {
  auto words = valid_segment();
  assert_int_equal(validate(words, 16), WB_E_ABI_MISMATCH);
}

void a_segment_without_magic_is_refused(void **) {
  auto words = valid_segment();
  header(words).magic ^= 1;
  assert_int_equal(validate(words, words.size() * 8), WB_E_ABI_MISMATCH);
}

void a_segment_without_fingerprint_is_refused(void **) {
  auto words = valid_segment();  // a broker that died before writing the fingerprint
  header(words).fingerprint = wb::shm::Fingerprint{};
  assert_int_equal(validate(words, words.size() * 8), WB_E_ABI_MISMATCH);
}

void a_segment_of_another_layout_is_refused(void **) {
  auto words = valid_segment();
  header(words).fingerprint.layout_version += 1;
  assert_int_equal(validate(words, words.size() * 8), WB_E_ABI_MISMATCH);
  assert_non_null(strstr(wb_last_error(), "layout"));
  words = valid_segment();
  header(words).fingerprint.tensor_size += 8;
  assert_int_equal(validate(words, words.size() * 8), WB_E_ABI_MISMATCH);
}

void inconsistent_capacities_or_offsets_are_refused(void **) {
  auto words = valid_segment();
  header(words).capacities.ring_slots = 1;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
  words = valid_segment();
  header(words).tensors_offset += 64;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
  words = valid_segment();
  header(words).client_stride += 64;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
  words = valid_segment();
  assert_int_equal(validate(words, words.size() * 8 - 4096), WB_E_PROTOCOL);  // truncated mapping
}

void capacities_past_the_brokers_limits_are_refused(void **) {
  // 2^31 clients of 2^31 leases: the client table's size wraps around 2^64, so offsets computed from these
  // capacities agree with themselves; only the capacity limits refuse them.
  auto words = valid_segment();
  wb::shm::Capacities caps = kCaps;
  caps.max_clients = 1u << 31;
  caps.leases_per_client = 1u << 31;
  wb::shm::write_header(header(words), caps, 0, 0);
  assert_int_equal(wb::shm::validate_header(words.data(), UINT64_MAX), WB_E_PROTOCOL);
  words = valid_segment();
  header(words).capacities.ring_slots = wb::shm::kCapacityLimits.ring_slots + 1;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
  words = valid_segment();
  header(words).capacities.max_ranks = wb::shm::kCapacityLimits.max_ranks + 1;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
  words = valid_segment();
  header(words).capacities.max_ranks = 0;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
  words = valid_segment();
  header(words).ranks_offset += 4096;
  assert_int_equal(validate(words, words.size() * 8), WB_E_PROTOCOL);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_complete_segment_is_accepted),
      cmocka_unit_test(a_segment_smaller_than_a_header_is_refused),
      cmocka_unit_test(a_segment_without_magic_is_refused),
      cmocka_unit_test(a_segment_without_fingerprint_is_refused),
      cmocka_unit_test(a_segment_of_another_layout_is_refused),
      cmocka_unit_test(inconsistent_capacities_or_offsets_are_refused),
      cmocka_unit_test(capacities_past_the_brokers_limits_are_refused),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
