// GPU arms' slots (core/arms.hpp), as the library's publishers and the broker treat them, driven from the segment:
// a plain publish claims the arms of its version whose place and replica fit and writes their tokens (a host
// publish at once); an arm of another version, place or replica stays armed, for its reader to withdraw; a
// withdrawn arm is never claimed, a claimed one never withdrawn; a sharded version lets its arms go when its last
// rank commits it; a later generation's token is above every earlier one; the topic's 8 slots run out; the broker
// writes the tokens a dead publisher claimed and frees a dead client's slots. The GPU half (the stream's wait, the
// guard, the copies) is tests/gpu/gpu-reshard --armed 1.
#include <sys/mman.h>

#include <cstring>

#include "arms.hpp"
#include "layout.hpp"
#include "replica.hpp"
#include "raw_client.hpp"  // its map_segment: inline, like layout.hpp's accessors

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace arms = wb::arms;
namespace shm = wb::shm;

namespace {

constexpr uint32_t kElems = 16;
constexpr uint32_t kOwner = 4242;  // no client's: the tests play the reader in the segment


struct Arm {
  shm::ArmSlot *slot;
  uint64_t state;
  uint64_t version;
  uint64_t token() const { return arms::token(state, version); }
  arms::Kind kind() const { return arms::kind(slot->state.load()); }
};

Arm arm(const shm::Segment &seg, uint32_t topic, uint64_t version, uint64_t place, uint32_t replica,
        uint32_t owner = kOwner) {
  uint64_t state = 0;
  uint32_t index = arms::reserve(seg, topic, owner, &state);
  assert_int_not_equal(index, shm::kNone);
  assert_int_equal(arms::kind(state), arms::kReserved);
  shm::ArmSlot &slot = seg.arm(topic, index);
  return Arm{&slot, arms::arm(slot, state, version, place, replica), version};
}

void release_all(const shm::Segment &seg, uint32_t topic) {
  for (uint32_t i = 0; i < shm::kArmsPerTopic; ++i) arms::release(seg.arm(topic, i), seg.arm(topic, i).state.load());
}

struct Mapped {
  void *base;
  size_t size;
  shm::Segment seg;
  explicit Mapped(const fx_broker *b) { seg = raw::map_segment(b->name, &base, &size); }
  ~Mapped() { munmap(base, size); }
  uint32_t topic(const char *name) const {
    uint32_t slot = raw::topic_slot_of(seg, name);
    assert_int_not_equal(slot, shm::kNone);
    return slot;
  }
};

// A plain topic `name` of two tensors with `replicas` replicas, its version 1 published by *c (both tensors).
wb_topic *published(const fx_broker *b, const char *name, uint32_t replicas, wb_client **c) {
  wb_topic *t;
  FX_OK(fx_attach(b, "publisher", c));
  FX_OK(fx_create_topic(*c, name, replicas, 2, kElems, &t));
  FX_OK(fx_publish(t, 3, kElems, nullptr));
  return t;
}

void a_plain_publish_lets_go_the_arms_that_fit(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  wb_client *c;
  wb_topic *t = published(b, "p", 1, &c);
  Mapped m(b);
  uint32_t topic = m.topic("p");
  uint64_t place = shm::allocations_epoch(m.seg);
  Arm fits = arm(m.seg, topic, 2, place, shm::kNone);
  Arm moved = arm(m.seg, topic, 2, place + 1, shm::kNone);  // the allocations changed since its reader's run
  Arm later = arm(m.seg, topic, 3, place, shm::kNone);
  Arm replica = arm(m.seg, topic, 2, place, 0);  // an R = 2 arm: R = 1 versions have none
  FX_OK(fx_publish(t, 3, kElems, nullptr));
  assert_int_equal(fits.kind(), arms::kClaimed);
  assert_true(fits.slot->word.load() == fits.token());
  for (const Arm &a : {moved, later, replica}) {
    assert_int_equal(a.kind(), arms::kArmed);
    assert_true(a.slot->word.load() == 0);
  }
  // Withdrawn: token + 1, which lets the stream's wait pass and the guard skip the copies; never claimed after.
  assert_true(arms::withdraw(*moved.slot, moved.state));
  assert_true(moved.slot->word.load() == moved.token() + 1);
  assert_true(arms::reached(moved.slot->word.load(), moved.token()));
  assert_false(arms::withdraw(*fits.slot, fits.state));  // claimed: its copies run
  assert_true(arms::withdraw(*later.slot, later.state));
  FX_OK(fx_publish(t, 3, kElems, nullptr));
  assert_int_equal(later.kind(), arms::kWithdrawn);
  assert_true(later.slot->word.load() == later.token() + 1);
  assert_true(arms::withdraw(*replica.slot, replica.state));
  // A slot armed again: its generation's token is above any write meant for an earlier one.
  release_all(m.seg, topic);
  Arm again = arm(m.seg, topic, 4, place, shm::kNone);
  uint64_t stale = arms::token(fits.state, 4);
  assert_false(arms::reached(fits.token(), again.token()));
  assert_false(arms::reached(stale, again.token()));
  FX_OK(fx_publish(t, 3, kElems, nullptr));
  assert_true(again.slot->word.load() == again.token());
  release_all(m.seg, topic);
  // Eight slots a topic.
  for (uint32_t i = 0; i < shm::kArmsPerTopic; ++i) arm(m.seg, topic, 9, place, shm::kNone);
  uint64_t full = 0;
  assert_int_equal(arms::reserve(m.seg, topic, kOwner, &full), shm::kNone);
  release_all(m.seg, topic);
  FX_OK(wb_detach(c));
}

void an_r2_version_lets_go_the_arms_of_its_replica(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  wb_client *c;
  wb_topic *t = published(b, "p2", 2, &c);
  Mapped m(b);
  uint32_t topic = m.topic("p2");
  uint64_t place = shm::allocations_epoch(m.seg);
  Arm in0 = arm(m.seg, topic, 2, place, 0);
  Arm in1 = arm(m.seg, topic, 2, place, 1);
  FX_OK(fx_publish(t, 3, kElems, nullptr));  // every tensor: the version is all in one replica
  uint32_t all_in = m.seg.record(topic, 2).replica.load();
  assert_true(all_in == 1 || all_in == 2);
  const Arm &right = all_in == 1 ? in0 : in1, &wrong = all_in == 1 ? in1 : in0;
  assert_int_equal(right.kind(), arms::kClaimed);
  assert_true(right.slot->word.load() == right.token());
  assert_int_equal(wrong.kind(), arms::kArmed);
  release_all(m.seg, topic);
  // A version that rewrote one tensor of two is in no one replica: no arm fits.
  Arm a0 = arm(m.seg, topic, 3, place, 0), a1 = arm(m.seg, topic, 3, place, 1);
  FX_OK(fx_publish(t, 1, kElems, nullptr));
  assert_int_equal(m.seg.record(topic, 3).replica.load(), 0);
  assert_int_equal(a0.kind(), arms::kArmed);
  assert_int_equal(a1.kind(), arms::kArmed);
  release_all(m.seg, topic);
  FX_OK(wb_detach(c));
}

// Rank r of 2 of model `name`: rows [4r, 4r + 4) of u32 [8] "w"; publishes version v.
wb_topic *join(wb_client *c, const char *name, uint32_t replicas, uint32_t r) {
  wb_topic *t;
  FX_OK(fx_create_rank(c, name, replicas, r, 2, &t));
  wb_shard_spec spec = fx_shard_1d("w", WB_DTYPE_U32, 8, 4 * r, 4);
  FX_OK(wb_shard_alloc(t, &spec, 1));
  return t;
}

void publish_rank(wb_topic *t, uint64_t v) {
  wb_update *u;
  FX_OK(wb_update_begin(t, 5000, &u));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_shard(u, "w", 0, &info));
  fx_fill_u32(info.data, 4, v, 0);
  uint64_t published = 0;
  FX_OK(wb_update_publish(u, nullptr, 0, &published));
  assert_int_equal(published, v);
}

void a_sharded_version_lets_its_arms_go_when_it_commits(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  for (uint32_t replicas : {1u, 2u}) {
    const char *name = replicas == 1 ? "m1" : "m2";
    wb_client *c0, *c1;
    FX_OK(fx_attach(b, "rank0", &c0));
    FX_OK(fx_attach(b, "rank1", &c1));
    wb_topic *r0 = join(c0, name, replicas, 0), *r1 = join(c1, name, replicas, 1);
    FX_OK(wb_topic_seal_rank(r0, 5000));
    FX_OK(wb_topic_seal_rank(r1, 5000));
    Mapped m(b);
    uint32_t topic = m.topic(name);
    uint64_t place = shm::allocations_epoch(m.seg);
    Arm first = arm(m.seg, topic, 1, place, replicas == 1 ? shm::kNone : 0);
    Arm other = arm(m.seg, topic, 1, place, replicas == 1 ? 0 : 1);
    publish_rank(r0, 1);
    assert_int_equal(first.kind(), arms::kArmed);  // rank 1 has not published: nothing to copy yet
    publish_rank(r1, 1);                           // the last rank's publish commits the version
    bool swap = false;
    if (replicas == 2) {  // both ranks wrote their version 1 into one replica: the arm of that one fits
      const shm::Topic &entry = m.seg.topic(topic);
      uint32_t r = wb::rank_replica_of(m.seg.rank(entry.first_rank).replica_of_version[1].load(), 1);
      assert_int_equal(wb::rank_replica_of(m.seg.rank(entry.first_rank + 1).replica_of_version[1].load(), 1), r);
      swap = r == 1;
    }
    const Arm &right = swap ? other : first, &wrong = swap ? first : other;
    assert_int_equal(right.kind(), arms::kClaimed);
    assert_true(right.slot->word.load() == right.token());
    assert_int_equal(wrong.kind(), arms::kArmed);
    release_all(m.seg, topic);
    FX_OK(wb_detach(c1));
    FX_OK(wb_detach(c0));
  }
}

uint32_t client_slot_of(const shm::Segment &seg, pid_t pid) {
  for (uint32_t i = 0; i < seg.caps().max_clients; ++i) {
    const shm::ClientSlot &s = seg.client(i);
    if (s.state.load() == uint32_t(shm::ClientState::kLive) && s.pid == uint32_t(pid)) return i;
  }
  fail_msg("no live client of pid %d", int(pid));
  return 0;
}

void the_broker_settles_a_dead_publishers_claims_and_frees_a_dead_clients_arms(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  auto *half_written = static_cast<uint32_t *>(fx_shared_alloc(sizeof(uint32_t)));
  fx_doomed_publisher doomed = {b, 1, 2, kElems, 2, half_written};
  pid_t child = fx_spawn(fx_doomed_publisher_main, &doomed);
  assert_int_equal(fx_wait_word(half_written, 1, 10000), 0);
  Mapped m(b);
  uint32_t topic = m.topic("model");
  uint64_t place = shm::allocations_epoch(m.seg);
  // Claimed by the publisher, which died before its stream wrote the token.
  Arm claimed = arm(m.seg, topic, 2, place, shm::kNone);
  bool taken = false;
  arms::claim(m.seg, topic, 2, place, [](uint32_t) { return true; }, [&](shm::ArmSlot &, uint64_t) { taken = true; });
  assert_true(taken);
  Arm unpublished = arm(m.seg, topic, 3, place, shm::kNone);
  arms::claim(m.seg, topic, 3, place, [](uint32_t) { return true; }, [](shm::ArmSlot &, uint64_t) {});
  Arm childs = arm(m.seg, topic, 3, place, shm::kNone, client_slot_of(m.seg, child) + 1);
  fx_kill9(child);
  const shm::Topic &entry = m.seg.topic(topic);
  // The broker lets the publisher go, then settles its claims, then frees the dead client's slots: waited for
  // in that order's last step (a look right after the first may come between them).
  for (int64_t deadline = fx_now_ms() + 5000; childs.kind() != arms::kFree && fx_now_ms() < deadline;) {
    fx_sleep_ms(5);
  }
  assert_int_equal(entry.publisher.load(), 0);
  assert_true(claimed.slot->word.load() == claimed.token());  // the stream's wait goes on
  assert_true(unpublished.slot->word.load() == 0);            // version 3 never came: its reader withdraws
  assert_int_equal(childs.kind(), arms::kFree);
  assert_int_equal(claimed.kind(), arms::kClaimed);
  release_all(m.seg, topic);
  fx_shared_free(half_written, sizeof(uint32_t));
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_plain_publish_lets_go_the_arms_that_fit, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(an_r2_version_lets_go_the_arms_of_its_replica, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_sharded_version_lets_its_arms_go_when_it_commits, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(the_broker_settles_a_dead_publishers_claims_and_frees_a_dead_clients_arms,
                                      fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
