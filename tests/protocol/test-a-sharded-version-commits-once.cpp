// A sharded version commits exactly once, whoever gets there (topic_state::commit_rank_version): the last rank's
// publish call commits it (latest moves before that call returns, and the broker's count of publishes moves by
// one per version, its own commit attempts on each rank's notice finding nothing left to do); a record claimed
// by a committer that died before storing latest is finished by the next caller; a record that is not this
// version's (what a committer that read latest long ago would find once the ring came round) is never claimed,
// and the version commits once the record is this version's again and the broker looks (a rank's release).
#include <sys/mman.h>

#include <cstring>

#include "layout.hpp"
#include "raw_client.hpp"  // its map_segment: inline, like layout.hpp's accessors

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace shm = wb::shm;

namespace {

constexpr int64_t kRows = 4, kCols = 4;

struct Rank {
  wb_client *c;
  wb_topic *t;
};

// Rank r of 2 of model "m" (R = 2), its rows [4r, 4r + 4) of a u32 [8, 4] tensor "w".
Rank join(const fx_broker *b, uint32_t r) {
  Rank rank{};
  FX_OK(fx_attach(b, r == 0 ? "rank0" : "rank1", &rank.c));
  wb_rank_options opts = WB_RANK_OPTIONS_INIT;
  opts.rank = r;
  opts.ranks = 2;
  FX_OK(wb_topic_create_rank(rank.c, "m", &opts, &rank.t));
  wb_shard_spec spec = WB_SHARD_SPEC_INIT;
  spec.name = "w";
  spec.dtype = WB_DTYPE_U32;
  spec.ndim = 2;
  spec.logical_shape[0] = 2 * kRows;
  spec.logical_shape[1] = kCols;
  spec.offset[0] = r * kRows;
  spec.extent[0] = kRows;
  spec.extent[1] = kCols;
  FX_OK(wb_shard_alloc(rank.t, &spec, 1));
  FX_OK(wb_topic_seal_rank(rank.t, 5000));
  return rank;
}

// Rank r publishes version v of its shard (each element v * 100 + r).
void publish(const Rank &rank, uint32_t r, uint64_t v) {
  wb_update *u;
  FX_OK(wb_update_begin(rank.t, 5000, &u));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_shard(u, "w", 0, &info));
  auto *data = static_cast<uint32_t *>(info.data);
  for (int64_t i = 0; i < kRows * kCols; ++i) data[i] = uint32_t(v * 100 + r);
  uint64_t published = 0;
  FX_OK(wb_update_publish(u, nullptr, 0, &published));
  assert_int_equal(published, v);
}

uint64_t latest_of(wb_topic *t) {
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(t, &latest));
  return latest;
}

uint64_t publishes(wb_client *c) {
  wb_broker_info info = WB_BROKER_INFO_INIT;
  FX_OK(wb_broker_get_info(c, &info));
  return info.publishes;
}

// The reader's snapshot of the latest is version v, both ranks' shards of it.
void expect_whole(wb_topic *reader, uint64_t v) {
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, 5000, &s));
  uint64_t version = 0;
  FX_OK(wb_snapshot_version(s, &version));
  assert_int_equal(version, v);
  for (uint32_t r = 0; r < 2; ++r) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_snapshot_shard(s, "w", r, 0, &info));
    assert_int_equal(static_cast<const uint32_t *>(info.data)[kRows * kCols - 1], uint32_t(v * 100 + r));
  }
  FX_OK(wb_snapshot_release(s));
}


void commits_once_whoever_gets_there(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  Rank ranks[2] = {join(b, 0), join(b, 1)};
  wb_client *rc;
  wb_topic *reader;
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  // Either rank may be the last: the last one's publish has committed when it returns, once.
  for (uint64_t v = 1; v <= 20; ++v) {
    uint32_t last = uint32_t(v % 2);
    publish(ranks[1 - last], 1 - last, v);
    publish(ranks[last], last, v);
    assert_int_equal(latest_of(reader), v);
  }
  expect_whole(reader, 20);
  fx_sleep_ms(100);  // the broker has seen every notice: none committed a version again
  assert_int_equal(publishes(rc), 20);

  void *base;
  size_t size;
  shm::Segment seg = raw::map_segment(b->name, &base, &size);
  uint32_t slot = raw::topic_slot_of(seg, "m");
  // Version 21's record claimed by a committer that died before latest: rank 1's publish finishes it.
  publish(ranks[0], 0, 21);
  shm::VersionRecord &rec21 = seg.record(slot, 21);
  assert_true(rec21.version.load() == (shm::kRecordPending | 21));
  rec21.version.store(21);
  publish(ranks[1], 1, 21);
  assert_int_equal(latest_of(reader), 21);
  expect_whole(reader, 21);
  // Version 22's record marked as a later version's (the ring come round): never claimed for 22.
  publish(ranks[0], 0, 22);
  shm::VersionRecord &rec22 = seg.record(slot, 22);
  rec22.version.store(shm::kRecordPending | (22 + seg.caps().ring_slots));
  publish(ranks[1], 1, 22);
  fx_sleep_ms(100);
  assert_int_equal(latest_of(reader), 21);
  // This version's mark again: the broker commits it when it looks, here when rank 1's publisher leaves.
  rec22.version.store(shm::kRecordPending | 22);
  FX_OK(wb_detach(ranks[1].c));
  for (int64_t deadline = fx_now_ms() + 5000; latest_of(reader) < 22 && fx_now_ms() < deadline;) fx_sleep_ms(5);
  assert_int_equal(latest_of(reader), 22);
  expect_whole(reader, 22);
  assert_int_equal(publishes(rc), 22);
  munmap(base, size);
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(ranks[0].c));
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(commits_once_whoever_gets_there, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
