/* One lease pins version v of every shard of a sharded model: a reader holding version 1 reads version 1's
 * bytes on every rank's shard while the ranks publish versions 2, 3 and 4 (R = 3: the lease leaves each shard
 * one replica to write besides the latest's); with R = 2 the same lease makes every rank's next begin wait
 * (WB_E_TIMEOUT naming the lease) until it is released. */
#include "sharded-versions.h"

#define RANKS 2
#define TENSORS 3
#define ALL ((1u << TENSORS) - 1)

static void open_model(const fx_broker *b, uint32_t replicas, wb_client **clients, wb_topic **ranks) {
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_join(b, "m", r, RANKS, replicas, TENSORS, &clients[r], &ranks[r]));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_topic_seal_rank(ranks[r], VX_TIMEOUT_MS));
}

static void publish_every_rank(wb_topic **ranks, uint64_t want) {
  for (uint32_t r = 0; r < RANKS; ++r) {
    uint64_t v = 0;
    FX_OK(vx_publish(ranks[r], r, ALL, &v));
    assert_int_equal(v, want);
  }
  FX_OK(vx_await_version(ranks[0], want));
}

static void test_r3_a_lease_keeps_every_shard_of_its_version(void **state) {
  wb_client *clients[RANKS], *rc;
  wb_topic *ranks[RANKS], *reader;
  open_model(*state, 3, clients, ranks);
  publish_every_rank(ranks, 1);
  FX_OK(fx_attach(*state, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  for (uint64_t v = 2; v <= 4; ++v) publish_every_rank(ranks, v);
  assert_int_equal(vx_check_all(s, RANKS, ALL, 1), 0);
  wb_snapshot *latest;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &latest));
  assert_int_equal(vx_check_all(latest, RANKS, ALL, 4), 0);
  FX_OK(wb_snapshot_release(latest));
  FX_OK(wb_snapshot_release(s));
  wb_detach(rc);
  for (uint32_t r = 0; r < RANKS; ++r) wb_detach(clients[r]);
}

static void test_r2_a_lease_on_an_old_version_holds_every_rank_back(void **state) {
  wb_client *clients[RANKS], *rc;
  wb_topic *ranks[RANKS], *reader;
  open_model(*state, 2, clients, ranks);
  publish_every_rank(ranks, 1);
  FX_OK(fx_attach(*state, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 1, VX_TIMEOUT_MS, &s));
  publish_every_rank(ranks, 2);
  for (uint32_t r = 0; r < RANKS; ++r) {
    wb_update *u;
    FX_EXPECT(wb_update_begin(ranks[r], 100, &u), WB_E_TIMEOUT);
    assert_non_null(strstr(wb_last_error(), "leases"));
  }
  assert_int_equal(vx_check_all(s, RANKS, ALL, 1), 0);
  FX_OK(wb_snapshot_release(s));
  publish_every_rank(ranks, 3);
  wb_detach(rc);
  for (uint32_t r = 0; r < RANKS; ++r) wb_detach(clients[r]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_r3_a_lease_keeps_every_shard_of_its_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_r2_a_lease_on_an_old_version_holds_every_rank_back, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
