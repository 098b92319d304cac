// Readers find which replica holds a version in the segment's replica words (a plan run keeps where it found
// each replica between runs): a word that names a replica beyond the topic's (a segment another process of the
// same uid scribbled over) is refused with WB_E_PROTOCOL by plan runs and tensor lookups alike, never read
// outside the tensor's storage.
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

void a_replica_beyond_the_topics_is_refused(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, "scribbled", &c));
  FX_OK(fx_create_topic(c, "model", 2, 1, kElems, &t));
  uint64_t v;
  FX_OK(fx_publish(t, 1, kElems, nullptr));
  FX_OK(fx_publish(t, 1, kElems, &v));  // in the other replica
  uint32_t out[kElems] = {};
  wb_slice_dest dest = WB_SLICE_DEST_INIT;
  dest.ndim = 1;
  dest.shape[0] = kElems;
  dest.dtype = WB_DTYPE_U32;
  dest.dst = out;
  dest.dst_bytes = sizeof(out);
  wb_slice_part part = WB_SLICE_PART_INIT;
  part.ndim = 1;
  part.name = "t0";
  part.extent[0] = kElems;
  wb_plan *plan;
  FX_OK(wb_plan_create(t, &dest, 1, &part, 1, &plan));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  FX_OK(wb_plan_run(plan, s, nullptr));
  assert_int_equal(fx_check_u32(out, kElems, v, 0), -1);  // -1: every element as written

  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(b->name, &base, &size);
  std::atomic<uint64_t> &beyond = seg.tensor(slot_of(seg, "t0")).replica_version[WB_MAX_REPLICAS - 1];
  beyond.store(v);
  assert_int_equal(wb_plan_run(plan, s, nullptr), WB_E_PROTOCOL);
  fx_expect_message("topic 'model' has 2 replicas, yet version", "of 't0' is in replica 3", nullptr);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  assert_int_equal(wb_snapshot_tensor(s, "t0", &info), WB_E_PROTOCOL);
  fx_expect_message("of 't0' is in replica 3", nullptr);
  beyond.store(shm::kNeverWritten);  // mended: the run finds the version where it was
  FX_OK(wb_plan_run(plan, s, nullptr));
  assert_int_equal(fx_check_u32(out, kElems, v, 0), -1);
  FX_OK(fx_check_tensor(s, 0, kElems, v));
  munmap(base, size);
  FX_OK(wb_snapshot_release(s));
  wb_plan_destroy(plan);
  FX_OK(wb_detach(c));
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_replica_beyond_the_topics_is_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
