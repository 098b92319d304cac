/* wb_topic_create_rank creates a sharded topic or joins it as one of its ranks: ranks and replicas must be the
 * existing topic's, a plain topic's name is refused (and wb_topic_create refuses a sharded one's), a rank held by
 * a live publisher is WB_E_BUSY, and once its publisher closed it another client takes the rank over and
 * registers the same box again (accepted, the storage kept). The rank table is bounded by weightbusd
 * --max-ranks; wb_topic_rank_info and wb_topic_get_info describe ranks and the layout. A broker restarted
 * after kill -9 adopts the ranks, their shards and seals: the ranks' clients resume and seal the rest. */
#include "fixture.h"

#define RANKS 3

typedef struct ranks {
  wb_client *c[RANKS + 1]; /* one client per rank, and one more */
  wb_topic *t[RANKS];
} ranks;

static void attach_all(fx_broker *b, ranks *r) {
  for (int i = 0; i <= RANKS; ++i) FX_OK(fx_attach(b, "rank", &r->c[i]));
}

static void detach_all(ranks *r) {
  for (int i = 0; i <= RANKS; ++i) FX_OK(wb_detach(r->c[i]));
}

/* Rank i holds rows [4i, 4i + 4) of "w" (f32 [12, 8]). */
static int alloc_rows(wb_topic *t, int i) {
  wb_shard_spec s = fx_shard_2d("w", WB_DTYPE_F32, 4 * RANKS, 8, 4 * i, 4, 0, 8);
  return wb_shard_alloc(t, &s, 1);
}

static void ranks_create_and_join(void **state) {
  ranks r;
  attach_all(*state, &r);
  for (int i = 0; i < RANKS; ++i) {
    FX_OK(fx_create_rank(r.c[i], "m", 2, (uint32_t)i, RANKS, &r.t[i]));
    FX_OK(alloc_rows(r.t[i], i));
  }
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(r.t[0], &info));
  assert_int_equal(info.ranks, RANKS);
  assert_int_equal(info.layout_complete, 0);
  assert_int_equal(info.tensor_count, 1); /* the logical tensor, once */
  assert_int_equal(info.publisher_pid, 0); /* each rank has its own */

  wb_tensor_info ti = WB_TENSOR_INFO_INIT;
  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(r.t[1], &count));
  assert_int_equal(count, 1);
  FX_OK(wb_topic_tensor(r.t[1], 0, &ti));
  assert_string_equal(ti.name, "w");
  assert_int_equal(ti.ndim, 2);
  assert_int_equal(ti.shape[0], 4 * RANKS);
  assert_int_equal(ti.shape[1], 8);
  assert_int_equal(ti.nbytes, 4 * RANKS * 8 * 4);
  assert_null(ti.data);

  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(r.t[0], 2, &ri));
  assert_int_equal(ri.rank, 2);
  assert_int_equal(ri.pid, (uint32_t)getpid());
  assert_int_equal(ri.sealed, 0);
  assert_int_equal(ri.shards, 1);
  assert_int_equal(ri.published, 0);
  assert_true(ri.bytes >= 2 * 4 * 8 * 4); /* two replicas of f32 [4, 8] */

  for (int i = 0; i < RANKS; ++i) FX_OK(wb_topic_seal_rank(r.t[i], 5000));
  FX_OK(wb_topic_seal_rank(r.t[0], 5000)); /* again: accepted */
  FX_OK(wb_topic_get_info(r.t[0], &info));
  assert_int_equal(info.layout_complete, 1);
  FX_OK(wb_topic_rank_info(r.t[2], 0, &ri));
  assert_int_equal(ri.sealed, 1);

  wb_topic *reader;
  FX_OK(wb_topic_open(r.c[RANKS], "m", &reader));
  FX_OK(wb_topic_rank_info(reader, 1, &ri)); /* readers too */
  assert_int_equal(ri.rank, 1);
  FX_EXPECT(wb_topic_rank_info(reader, RANKS, &ri), WB_E_INVAL);
  fx_expect_message("rank 3", "'m'", NULL);
  FX_EXPECT(wb_topic_seal_rank(reader, 5000), WB_E_ROLE);
  wb_shard_spec s = fx_shard_2d("w", WB_DTYPE_F32, 4 * RANKS, 8, 0, 4, 0, 8);
  FX_EXPECT(wb_shard_alloc(reader, &s, 1), WB_E_ROLE);

  uint32_t n = 0;
  wb_topic_info listed[2] = {WB_TOPIC_INFO_INIT, WB_TOPIC_INFO_INIT};
  FX_OK(wb_list_topics(r.c[0], listed, 2, &n));
  assert_int_equal(n, 1);
  assert_int_equal(listed[0].ranks, RANKS);
  assert_int_equal(listed[0].layout_complete, 1);
  detach_all(&r);
}

static void joining_must_agree(void **state) {
  ranks r;
  attach_all(*state, &r);
  FX_OK(fx_create_rank(r.c[0], "m", 2, 0, RANKS, &r.t[0]));
  wb_topic *t;
  FX_EXPECT(fx_create_rank(r.c[1], "m", 2, 1, RANKS + 1, &t), WB_E_INVAL);
  fx_expect_message("'m'", "3 ranks", "not 4", NULL);
  FX_EXPECT(fx_create_rank(r.c[1], "m", 3, 1, RANKS, &t), WB_E_INVAL);
  fx_expect_message("'m'", "2 replicas", "not 3", NULL);
  FX_EXPECT(fx_create_rank(r.c[1], "m", 2, RANKS, RANKS, &t), WB_E_INVAL);
  fx_expect_message("rank 3", "out of range", NULL);
  FX_EXPECT(fx_create_rank(r.c[1], "m", 2, 0, 0, &t), WB_E_INVAL);
  FX_EXPECT(fx_create_rank(r.c[1], "m", 0, 0, RANKS, &t), WB_E_INVAL);
  wb_rank_options bad = WB_RANK_OPTIONS_INIT;
  bad.struct_size = 4;
  FX_EXPECT(wb_topic_create_rank(r.c[1], "m", &bad, &t), WB_E_INVAL);
  FX_EXPECT(wb_topic_create_rank(r.c[1], "m", NULL, &t), WB_E_INVAL);

  /* A sharded name through wb_topic_create, a plain name through wb_topic_create_rank. */
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_EXPECT(wb_topic_create(r.c[1], "m", &o, &t), WB_E_INVAL);
  fx_expect_message("topic 'm' is sharded over 3 ranks", "wb_topic_create_rank", NULL);
  wb_topic *plain;
  FX_OK(wb_topic_create(r.c[1], "plain", &o, &plain));
  FX_EXPECT(fx_create_rank(r.c[2], "plain", 2, 0, RANKS, &t), WB_E_INVAL);
  fx_expect_message("'plain'", "plain topic", NULL);
  /* A shard on a plain topic, and a plain tensor on a sharded one. */
  wb_shard_spec s = fx_shard_1d("x", WB_DTYPE_U8, 8, 0, 8);
  FX_EXPECT(wb_shard_alloc(plain, &s, 1), WB_E_INVAL);
  fx_expect_message("'plain' is not sharded", NULL);
  wb_tensor_spec ts = WB_TENSOR_SPEC_INIT;
  ts.name = "x";
  ts.dtype = WB_DTYPE_U8;
  ts.ndim = 1;
  ts.shape[0] = 8;
  FX_EXPECT(wb_tensor_alloc(r.t[0], &ts, 1), WB_E_INVAL);
  fx_expect_message("'m' is sharded", "'x'", NULL);
  FX_EXPECT(wb_topic_seal_rank(plain, 5000), WB_E_INVAL);
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_EXPECT(wb_topic_rank_info(plain, 0, &ri), WB_E_INVAL);
  fx_expect_message("'plain' is not sharded", NULL);
  detach_all(&r);
}

static void a_live_rank_is_busy_and_a_closed_one_is_taken_over(void **state) {
  ranks r;
  attach_all(*state, &r);
  FX_OK(fx_create_rank(r.c[0], "m", 2, 0, RANKS, &r.t[0]));
  FX_OK(fx_create_rank(r.c[1], "m", 2, 1, RANKS, &r.t[1]));
  FX_OK(alloc_rows(r.t[1], 1));
  wb_topic *t;
  FX_EXPECT(fx_create_rank(r.c[2], "m", 2, 1, RANKS, &t), WB_E_BUSY);
  char pid[32];
  snprintf(pid, sizeof(pid), "pid %u", (unsigned)getpid());
  fx_expect_message("rank 1 of 'm' has a live publisher", pid, NULL);
  FX_EXPECT(fx_create_rank(r.c[0], "m", 2, 2, RANKS, &t), WB_E_BUSY); /* one rank per client */
  fx_expect_message("already publishes rank 0", NULL);

  wb_rank_info before = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(r.t[0], 1, &before));
  FX_OK(wb_topic_close(r.t[1]));
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(r.t[0], 1, &ri));
  assert_int_equal(ri.pid, 0);
  assert_int_equal(ri.shards, 1); /* the shards stay */

  FX_OK(fx_create_rank(r.c[2], "m", 2, 1, RANKS, &r.t[1]));
  FX_OK(alloc_rows(r.t[1], 1)); /* the same box again: accepted, storage kept */
  FX_OK(wb_topic_rank_info(r.t[0], 1, &ri));
  assert_int_equal(ri.pid, (uint32_t)getpid());
  assert_int_equal(ri.shards, 1);
  assert_int_equal(ri.bytes, before.bytes);
  wb_client_info clients[RANKS + 1];
  for (int i = 0; i <= RANKS; ++i) clients[i] = (wb_client_info)WB_CLIENT_INFO_INIT;
  uint32_t n = 0;
  FX_OK(wb_list_clients(r.c[0], clients, RANKS + 1, &n));
  uint32_t published = 0;
  for (uint32_t i = 0; i < n && i <= RANKS; ++i) published += clients[i].topics_published;
  assert_int_equal(published, 2); /* ranks 0 and 1 */
  detach_all(&r);
}

static void a_rank_of_a_dead_client_is_taken_over(void **state) {
  ranks r;
  attach_all(*state, &r);
  FX_OK(fx_create_rank(r.c[0], "m", 2, 0, RANKS, &r.t[0]));
  wb_client *doomed;
  FX_OK(fx_attach(*state, "doomed", &doomed));
  wb_topic *t;
  FX_OK(fx_create_rank(doomed, "m", 2, 2, RANKS, &t));
  FX_OK(alloc_rows(t, 2));
  FX_OK(wb_detach(doomed)); /* its connection ends: the broker releases the rank */
  wb_topic *again = NULL;
  int64_t until = fx_now_ms() + 5000;
  int rc;
  while ((rc = fx_create_rank(r.c[1], "m", 2, 2, RANKS, &again)) == WB_E_BUSY && fx_now_ms() < until) {
    fx_sleep_ms(10);
  }
  FX_EXPECT(rc, WB_OK);
  FX_OK(alloc_rows(again, 2));
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(r.t[0], 2, &ri));
  assert_int_equal(ri.shards, 1);
  detach_all(&r);
}

static void a_restarted_broker_adopts_ranks_and_shards(void **state) {
  fx_broker *b = *state;
  ranks r;
  attach_all(b, &r);
  for (int i = 0; i < RANKS; ++i) {
    FX_OK(fx_create_rank(r.c[i], "m", 2, (uint32_t)i, RANKS, &r.t[i]));
    FX_OK(alloc_rows(r.t[i], i));
  }
  FX_OK(wb_topic_seal_rank(r.t[0], 5000));
  fx_broker_kill9(b);
  assert_int_equal(fx_broker_restart(b), 0);
  for (int i = 1; i < RANKS; ++i) FX_OK(wb_topic_seal_rank(r.t[i], 5000)); /* each resumes first */
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(r.t[0], &info));
  assert_int_equal(info.layout_complete, 1);
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(r.t[0], 2, &ri));
  assert_int_equal(ri.shards, 1);
  assert_int_equal(ri.sealed, 1);
  assert_int_equal(ri.pid, (uint32_t)getpid());
  FX_OK(alloc_rows(r.t[1], 1)); /* the adopted chain still finds rank 1's box */
  wb_shard_spec more = fx_shard_1d("extra", WB_DTYPE_F32, 4, 0, 4);
  FX_EXPECT(wb_shard_alloc(r.t[1], &more, 1), WB_E_STATE);
  detach_all(&r);
}

static const fx_broker_opts four_ranks = {.max_ranks = 4};

static void the_rank_table_is_bounded(void **state) {
  ranks r;
  attach_all(*state, &r);
  wb_topic *t;
  FX_EXPECT(fx_create_rank(r.c[0], "five", 2, 0, 5, &t), WB_E_NOSPC);
  fx_expect_message("rank table is full", "--max-ranks", NULL);
  FX_OK(fx_create_rank(r.c[0], "three", 2, 0, 3, &r.t[0]));
  FX_EXPECT(fx_create_rank(r.c[1], "two", 2, 0, 2, &t), WB_E_NOSPC);
  FX_OK(fx_create_rank(r.c[1], "one", 2, 0, 1, &r.t[1]));
  detach_all(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ranks_create_and_join, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(joining_must_agree, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_live_rank_is_busy_and_a_closed_one_is_taken_over, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_rank_of_a_dead_client_is_taken_over, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_restarted_broker_adopts_ranks_and_shards, fx_setup, fx_teardown),
      cmocka_unit_test_prestate_setup_teardown(the_rank_table_is_bounded, fx_setup, fx_teardown,
                                               (void *)&four_ranks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
