// The broker bumps the segment header's allocation_changes after every change of a CUDA allocation's state
// (registered live, revoked, dead with its exporter), and only then: a client's import sweep reads every
// import's state only when the count moved since its last sweep. Legacy registrations need no GPU here (the
// broker keeps the handle's bytes; nothing opens them).
#include <sys/mman.h>

#include <chrono>
#include <thread>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace proto = wb::proto;
namespace shm = wb::shm;

namespace {

fx_broker *broker_of(void **state) { return static_cast<fx_broker *>(*state); }

int attach_raw(int sock) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint32_t> fp = shm::fingerprint_words();
  return raw::send_body(sock, b, proto::CreateAttachDirect(b, shm::kLayoutVersion, &fp, uint32_t(getpid()), "raw"));
}

int register_legacy(int sock, uint64_t base) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint8_t> uuid(16, 7), handle(64, 9);
  return raw::send_body(sock, b,
                        proto::CreateRegisterCudaAllocationDirect(b, 0, uint32_t(shm::AllocationKind::kCudaIpc), 8192,
                                                                  &uuid, &handle, base, 0));
}

int revoke(int sock, uint32_t allocation) {
  flatbuffers::FlatBufferBuilder b;
  return raw::send_body(sock, b, proto::CreateRevokeAllocation(b, allocation));
}

// The slot of the CUDA allocation registered at `base`.
uint32_t slot_of(const shm::Segment &seg, uint64_t base) {
  for (uint32_t i = 0; i < seg.header().allocation_count.load(); ++i) {
    const shm::Allocation &a = seg.allocation(i);
    if (a.kind.load() == uint32_t(shm::AllocationKind::kCudaIpc) && a.exporter_base == base) return i;
  }
  fail_msg("no CUDA allocation registered at %#llx", static_cast<unsigned long long>(base));
  return 0;
}

uint64_t changes(const shm::Segment &seg) { return seg.header().allocation_changes.load(); }

shm::AllocationState state_of(const shm::Segment &seg, uint32_t slot) {
  return shm::AllocationState(seg.allocation(slot).state.load());
}

void every_state_change_bumps_the_count_and_nothing_else_does(void **state) {
  fx_broker *b = broker_of(state);
  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(b->name, &base, &size);
  assert_int_equal(changes(seg), 0);

  int sock = raw::connect_to(b->socket_path);
  assert_true(sock >= 0);
  assert_int_equal(attach_raw(sock), WB_OK);
  flatbuffers::FlatBufferBuilder builder;
  assert_int_equal(raw::send_body(sock, builder, proto::CreateCreateTopicDirect(builder, "model", 2)), WB_OK);
  assert_int_equal(changes(seg), 0);  // a topic and its host storage are no CUDA allocation

  assert_int_equal(register_legacy(sock, 0x7f0000000000), WB_OK);
  uint32_t first = slot_of(seg, 0x7f0000000000);
  assert_int_equal(state_of(seg, first), shm::AllocationState::kLive);
  assert_int_equal(changes(seg), 1);

  assert_int_equal(revoke(sock, first), WB_OK);
  assert_int_equal(state_of(seg, first), shm::AllocationState::kRevoked);
  assert_int_equal(changes(seg), 2);
  assert_int_equal(revoke(sock, first), WB_OK);  // revoked already: no change, no bump
  assert_int_equal(changes(seg), 2);
  assert_int_not_equal(revoke(sock, 999), WB_OK);  // refused: no bump
  assert_int_equal(changes(seg), 2);

  assert_int_equal(register_legacy(sock, 0x7f0000100000), WB_OK);
  uint32_t second = slot_of(seg, 0x7f0000100000);
  assert_int_equal(changes(seg), 3);
  close(sock);  // the exporter leaves: its live allocation dies, the revoked one stays as it is
  for (int i = 0; i < 500 && changes(seg) == 3; ++i) {  // the count moves after the state
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  assert_int_equal(state_of(seg, second), shm::AllocationState::kDead);
  assert_int_equal(changes(seg), 4);
  assert_int_equal(state_of(seg, first), shm::AllocationState::kRevoked);
  munmap(base, size);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_state_change_bumps_the_count_and_nothing_else_does, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
