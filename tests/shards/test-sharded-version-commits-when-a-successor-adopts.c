/* The broker commits a sharded model's versions; when it dies, the ranks' publishes still succeed and readers
 * see nothing new until a successor adopts the segment: then the version every rank published is committed
 * at once (whole on every shard), and the ranks go on with the next version through the successor. */
#include "sharded-versions.h"

#define RANKS 2
#define TENSORS 2
#define ALL ((1u << TENSORS) - 1)

static void test_the_successor_commits_what_every_rank_published(void **state) {
  fx_broker *b = *state;
  wb_client *clients[RANKS], *rc;
  wb_topic *ranks[RANKS], *reader;
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_join(b, "m", r, RANKS, 2, TENSORS, &clients[r], &ranks[r]));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_topic_seal_rank(ranks[r], VX_TIMEOUT_MS));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_publish(ranks[r], r, ALL, NULL));
  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(vx_await_version(reader, 1));

  wb_update *u[RANKS];
  for (uint32_t r = 0; r < RANKS; ++r) {
    FX_OK(wb_update_begin(ranks[r], VX_TIMEOUT_MS, &u[r]));
    FX_OK(vx_write(u[r], r, ALL, 2));
  }
  fx_broker_kill9(b);
  uint64_t v = 0, metadata = 2;
  FX_OK(wb_update_publish(u[0], &metadata, sizeof(metadata), &v));
  assert_int_equal(v, 2);
  FX_OK(wb_update_publish(u[1], NULL, 0, &v));
  assert_int_equal(v, 2);
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(reader, &latest));
  assert_int_equal(latest, 1);

  assert_int_equal(fx_broker_restart(b), 0);
  FX_OK(vx_await_version(reader, 2));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  assert_int_equal(vx_check_all(s, RANKS, ALL, 2), 0);
  FX_OK(wb_snapshot_release(s));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_publish(ranks[r], r, ALL, &v));
  assert_int_equal(v, 3);
  FX_OK(vx_await_version(reader, 3));
  wb_detach(rc);
  for (uint32_t r = 0; r < RANKS; ++r) wb_detach(clients[r]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_the_successor_commits_what_every_rank_published, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
