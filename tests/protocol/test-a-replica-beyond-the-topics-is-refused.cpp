// Readers find which replica holds a version in the version record (a full version of a plain topic: one for
// every tensor) or else in each tensor's replica words (a plan run keeps where it found each replica between
// runs): a word that names a replica beyond the topic's (a segment another process of the same uid scribbled
// over) is refused with WB_E_PROTOCOL by plan runs and tensor lookups alike, a record that does is passed over
// for the words, and nothing is ever read outside the tensor's storage.
#include <sys/mman.h>

#include <cstring>

#include "layout.hpp"
#include "raw_client.hpp"  // its map_segment: inline, like layout.hpp's accessors

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace shm = wb::shm;

namespace {

constexpr uint32_t kElems = 16;

// The registry slot of tensor `name`.
uint32_t slot_of(const shm::Segment &seg, const char *name) {
  for (uint32_t i = 0; i < seg.caps().max_tensors; ++i) {
    if (strcmp(seg.tensor(i).name, name) == 0) return i;
  }
  fail_msg("no tensor '%s' in the segment", name);
  return 0;
}


// A plain topic "model" of two tensors of kElems u32 (R = 2), published twice by c: both tensors, then `second`.
struct Published {
  wb_client *c;
  wb_topic *t;
  uint64_t v;  // the second version
};

Published publish_twice(const fx_broker *b, uint32_t second) {
  Published p{};
  FX_OK(fx_attach(b, "scribbled", &p.c));
  FX_OK(fx_create_topic(p.c, "model", 2, 2, kElems, &p.t));
  FX_OK(fx_publish(p.t, 3, kElems, nullptr));
  FX_OK(fx_publish(p.t, second, kElems, &p.v));
  return p;
}

// A plan copying tensor t0 whole into out.
wb_plan *plan_of_t0(wb_topic *t, uint32_t *out) {
  wb_slice_dest dest = WB_SLICE_DEST_INIT;
  dest.ndim = 1;
  dest.shape[0] = kElems;
  dest.dtype = WB_DTYPE_U32;
  dest.dst = out;
  dest.dst_bytes = kElems * sizeof(uint32_t);
  wb_slice_part part = WB_SLICE_PART_INIT;
  part.ndim = 1;
  part.name = "t0";
  part.extent[0] = kElems;
  wb_plan *plan;
  FX_OK(wb_plan_create(t, &dest, 1, &part, 1, &plan));
  return plan;
}

// A plan run of t0 and a lookup of t<index> read version p.v, every element; then all is let go.
void read_and_close(const Published &p, wb_plan *plan, wb_snapshot *s, const uint32_t *out, uint32_t index) {
  FX_OK(wb_plan_run(plan, s, nullptr));
  assert_int_equal(fx_check_u32(out, kElems, p.v, 0), -1);  // -1: every element as written
  FX_OK(fx_check_tensor(s, index, kElems, p.v));
  FX_OK(wb_snapshot_release(s));
  wb_plan_destroy(plan);
  FX_OK(wb_detach(p.c));
}

void a_replica_word_beyond_the_topics_is_refused(void **state) {
  Published p = publish_twice(static_cast<fx_broker *>(*state), 1);  // t0 alone: t1 stays in the other replica
  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(static_cast<fx_broker *>(*state)->name, &base, &size);
  assert_int_equal(seg.record(raw::topic_slot_of(seg, "model"), p.v).replica.load(), 0);  // so it names none
  uint32_t out[kElems] = {};
  wb_plan *plan = plan_of_t0(p.t, out);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(p.t, 0, 1000, &s));
  FX_OK(wb_plan_run(plan, s, nullptr));
  assert_int_equal(fx_check_u32(out, kElems, p.v, 0), -1);

  std::atomic<uint64_t> &beyond = seg.tensor(slot_of(seg, "t0")).replica_version[WB_MAX_REPLICAS - 1];
  beyond.store(p.v);
  assert_int_equal(wb_plan_run(plan, s, nullptr), WB_E_PROTOCOL);
  fx_expect_message("topic 'model' has 2 replicas, yet version", "of 't0' is in replica 3", nullptr);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  assert_int_equal(wb_snapshot_tensor(s, "t0", &info), WB_E_PROTOCOL);
  fx_expect_message("of 't0' is in replica 3", nullptr);
  beyond.store(shm::kNeverWritten);  // mended: the run finds the version where it was
  munmap(base, size);
  read_and_close(p, plan, s, out, 0);
}

void a_record_naming_a_replica_beyond_the_topics_is_passed_over(void **state) {
  Published p = publish_twice(static_cast<fx_broker *>(*state), 3);  // both: in one replica
  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(static_cast<fx_broker *>(*state)->name, &base, &size);
  std::atomic<uint32_t> &named = seg.record(raw::topic_slot_of(seg, "model"), p.v).replica;
  assert_in_range(named.load(), 1, 2);  // 1 + the replica of both
  named.store(WB_MAX_REPLICAS + 1);
  uint32_t out[kElems] = {};
  wb_plan *plan = plan_of_t0(p.t, out);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(p.t, 0, 1000, &s));
  munmap(base, size);
  read_and_close(p, plan, s, out, 1);  // by the replica words
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_replica_word_beyond_the_topics_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_record_naming_a_replica_beyond_the_topics_is_passed_over, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
