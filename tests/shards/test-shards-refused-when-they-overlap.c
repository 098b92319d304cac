/* Shards of different ranks that overlap are refused when registered (WB_E_LAYOUT naming the tensor, both ranks,
 * both regions and their common part), and so are a rank's own overlapping boxes, unless both are
 * WB_SHARD_REPLICATED with the same box. The refused request changes nothing: all or nothing. */
#include "fixture.h"

typedef struct two_ranks {
  wb_client *c[2];
  wb_topic *t[2];
} two_ranks;

static void start(fx_broker *b, two_ranks *r) {
  for (uint32_t i = 0; i < 2; ++i) {
    FX_OK(fx_attach(b, "rank", &r->c[i]));
    FX_OK(fx_create_rank(r->c[i], "m", 2, i, 2, &r->t[i]));
  }
}

static void stop(two_ranks *r) {
  for (int i = 0; i < 2; ++i) FX_OK(wb_detach(r->c[i]));
}

static uint32_t shards_of(wb_topic *t, uint32_t rank) {
  wb_rank_info ri = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(t, rank, &ri));
  return ri.shards;
}

static void another_ranks_region_is_refused(void **state) {
  two_ranks r;
  start(*state, &r);
  wb_shard_spec a = fx_shard_2d("w", WB_DTYPE_F32, 8, 8, 0, 4, 0, 8);
  FX_OK(wb_shard_alloc(r.t[0], &a, 1));
  wb_shard_spec b = fx_shard_2d("w", WB_DTYPE_F32, 8, 8, 2, 6, 4, 4);
  FX_EXPECT(wb_shard_alloc(r.t[1], &b, 1), WB_E_LAYOUT);
  fx_expect_message("tensor 'w'", "rank 1's region [2:8, 4:8]", "overlaps rank 0's [0:4, 0:8]", "in [2:4, 4:8]", NULL);
  assert_int_equal(shards_of(r.t[0], 1), 0);
  /* All or nothing: a good shard beside a bad one is not made either. */
  wb_shard_spec both[2] = {fx_shard_1d("bias", WB_DTYPE_F32, 8, 0, 8), b};
  FX_EXPECT(wb_shard_alloc(r.t[1], both, 2), WB_E_LAYOUT);
  uint32_t count = 0;
  FX_OK(wb_topic_tensor_count(r.t[0], &count));
  assert_int_equal(count, 1);
  wb_shard_spec rest = fx_shard_2d("w", WB_DTYPE_F32, 8, 8, 4, 4, 0, 8);
  FX_OK(wb_shard_alloc(r.t[1], &rest, 1)); /* touching is not overlapping */
  stop(&r);
}

static void a_ranks_own_boxes_must_not_overlap(void **state) {
  two_ranks r;
  start(*state, &r);
  wb_shard_spec two[2] = {fx_shard_1d("v", WB_DTYPE_U8, 16, 0, 4), fx_shard_1d("v", WB_DTYPE_U8, 16, 8, 4)};
  FX_OK(wb_shard_alloc(r.t[0], two, 2)); /* two boxes of one tensor on one rank */
  assert_int_equal(shards_of(r.t[0], 0), 2);
  wb_shard_spec over = fx_shard_1d("v", WB_DTYPE_U8, 16, 2, 4);
  FX_EXPECT(wb_shard_alloc(r.t[0], &over, 1), WB_E_LAYOUT);
  fx_expect_message("tensor 'v'", "rank 0's region [2:6]", "overlaps its own [0:4]", "in [2:4]", NULL);
  wb_shard_spec same[2] = {fx_shard_1d("u", WB_DTYPE_U8, 16, 0, 4), fx_shard_1d("u", WB_DTYPE_U8, 16, 2, 4)};
  FX_EXPECT(wb_shard_alloc(r.t[0], same, 2), WB_E_LAYOUT); /* within one request too */
  fx_expect_message("tensor 'u'", "[2:6]", "[0:4]", NULL);
  FX_OK(wb_shard_alloc(r.t[0], two, 2)); /* the same boxes again: accepted */
  assert_int_equal(shards_of(r.t[0], 0), 2);
  stop(&r);
}

static void replicated_boxes_may_coincide_only_when_both_say_so(void **state) {
  two_ranks r;
  start(*state, &r);
  wb_shard_spec norm = fx_shard_1d("norm", WB_DTYPE_F32, 64, 0, 64);
  norm.flags = WB_SHARD_REPLICATED;
  FX_OK(wb_shard_alloc(r.t[0], &norm, 1));
  wb_shard_spec plain = norm;
  plain.flags = 0;
  FX_EXPECT(wb_shard_alloc(r.t[1], &plain, 1), WB_E_LAYOUT);
  fx_expect_message("tensor 'norm'", "rank 1's region [0:64] overlaps rank 0's [0:64]", NULL);
  wb_shard_spec half = fx_shard_1d("norm", WB_DTYPE_F32, 64, 0, 32);
  half.flags = WB_SHARD_REPLICATED;
  FX_EXPECT(wb_shard_alloc(r.t[1], &half, 1), WB_E_LAYOUT); /* replicated, but another box */
  FX_OK(wb_shard_alloc(r.t[1], &norm, 1));
  assert_int_equal(shards_of(r.t[0], 1), 1);
  stop(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(another_ranks_region_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_ranks_own_boxes_must_not_overlap, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(replicated_boxes_may_coincide_only_when_both_say_so, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
