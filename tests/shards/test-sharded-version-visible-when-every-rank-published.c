/* A sharded model's version becomes visible only when every rank has published it, all at once: with three
 * ranks, after ranks 0 and 1 published version 2 readers still see version 1 whole (R = 2; R = 1: acquiring the
 * latest waits, and times out naming rank 2) and wb_topic_wait times out naming rank 2; once rank 2 publishes,
 * version 2 is the latest, every shard holds its bytes, and its metadata is rank 0's. */
#include "sharded-versions.h"

#define RANKS 3
#define TENSORS 2
#define ALL ((1u << TENSORS) - 1)

typedef struct model {
  wb_client *clients[RANKS];
  wb_topic *ranks[RANKS];
  wb_client *reader_client;
  wb_topic *reader;
} model;

static void open_model(const fx_broker *b, uint32_t replicas, model *m) {
  for (uint32_t r = 0; r < RANKS; ++r) {
    FX_OK(vx_join(b, "m", r, RANKS, replicas, TENSORS, &m->clients[r], &m->ranks[r]));
  }
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_topic_seal_rank(m->ranks[r], VX_TIMEOUT_MS));
  FX_OK(fx_attach(b, "reader", &m->reader_client));
  FX_OK(wb_topic_open(m->reader_client, "m", &m->reader));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_publish(m->ranks[r], r, ALL, NULL));
  FX_OK(vx_await_version(m->reader, 1));
}

static void close_model(model *m) {
  wb_detach(m->reader_client);
  for (uint32_t r = 0; r < RANKS; ++r) wb_detach(m->clients[r]);
}

static void expect_wait_names_rank_2(model *m) {
  uint64_t latest = 0;
  FX_EXPECT(wb_topic_wait(m->reader, 1, 200, &latest), WB_E_TIMEOUT);
  assert_non_null(strstr(wb_last_error(), "model version 2 waits for rank(s) 2"));
}

static void finish_version_2(model *m) {
  uint64_t v = 0;
  FX_OK(vx_publish(m->ranks[2], 2, ALL, &v));
  assert_int_equal(v, 2);
  FX_OK(vx_await_version(m->reader, 2));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(m->reader, 0, VX_TIMEOUT_MS, &s));
  uint64_t version = 0;
  FX_OK(wb_snapshot_version(s, &version));
  assert_int_equal(version, 2);
  assert_int_equal(vx_check_all(s, RANKS, ALL, 2), 0);
  const void *metadata;
  uint32_t size;
  FX_OK(wb_snapshot_metadata(s, &metadata, &size, NULL));
  assert_int_equal(size, sizeof(uint64_t));
  uint64_t stored;
  memcpy(&stored, metadata, sizeof(stored));
  assert_int_equal(stored, 2);
  FX_OK(wb_snapshot_release(s));
}

static void test_r2_readers_see_the_last_complete_version(void **state) {
  model m;
  open_model(*state, 2, &m);
  for (uint32_t r = 0; r < 2; ++r) {
    uint64_t v = 0;
    FX_OK(vx_publish(m.ranks[r], r, ALL, &v));
    assert_int_equal(v, 2);
  }
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(m.reader, &latest));
  assert_int_equal(latest, 1);
  expect_wait_names_rank_2(&m);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(m.reader, 0, VX_TIMEOUT_MS, &s));
  uint64_t version = 0;
  FX_OK(wb_snapshot_version(s, &version));
  assert_int_equal(version, 1);
  assert_int_equal(vx_check_all(s, RANKS, ALL, 1), 0);  /* ranks 0 and 1 wrote version 2 into other replicas */
  FX_OK(wb_snapshot_release(s));
  FX_EXPECT(wb_snapshot_acquire(m.reader, 2, 0, &s), WB_E_NOT_FOUND);
  finish_version_2(&m);
  close_model(&m);
}

static void test_r1_acquires_wait_for_the_last_rank(void **state) {
  model m;
  open_model(*state, 1, &m);
  for (uint32_t r = 0; r < 2; ++r) FX_OK(vx_publish(m.ranks[r], r, ALL, NULL));
  expect_wait_names_rank_2(&m);
  wb_snapshot *s;
  FX_EXPECT(wb_snapshot_acquire(m.reader, 0, 200, &s), WB_E_TIMEOUT);
  assert_non_null(strstr(wb_last_error(), "model version 2 waits for rank(s) 2"));
  finish_version_2(&m);
  close_model(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_r2_readers_see_the_last_complete_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_r1_acquires_wait_for_the_last_rank, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
