/* A rank that does not publish holds the model back, and every timeout says which: with three ranks, after
 * ranks 0 and 2 published version 2, a reader's wb_topic_wait times out with "(model version 2 waits for
 * rank(s) 1)", and rank 0's begin of version 3 times out naming rank 1 with its pid, its last version and how
 * long ago it published it; wb_topic_rank_info shows published and writing per rank. Before every rank has
 * sealed, a begin times out naming the ranks that have not. */
#include "sharded-versions.h"

#define RANKS 3
#define TENSORS 1

static void test_waits_and_begins_name_the_rank_that_lags(void **state) {
  const fx_broker *b = *state;
  wb_client *clients[RANKS];
  wb_topic *ranks[RANKS];
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_join(b, "m", r, RANKS, 2, TENSORS, &clients[r], &ranks[r]));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_topic_seal_rank(ranks[r], VX_TIMEOUT_MS));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_publish(ranks[r], r, 1, NULL));
  FX_OK(vx_await_version(ranks[0], 1));
  FX_OK(vx_publish(ranks[0], 0, 1, NULL));
  FX_OK(vx_publish(ranks[2], 2, 1, NULL));

  uint64_t latest;
  FX_EXPECT(wb_topic_wait(ranks[2], 1, 100, &latest), WB_E_TIMEOUT);
  assert_non_null(strstr(wb_last_error(), "(model version 2 waits for rank(s) 1)"));
  wb_update *u;
  FX_EXPECT(wb_update_begin(ranks[0], 100, &u), WB_E_TIMEOUT);
  char want[96];
  snprintf(want, sizeof(want), "version 2 waits for rank(s) 1 (pid %d, last published 1, ", (int)getpid());
  assert_non_null(strstr(wb_last_error(), want));
  assert_non_null(strstr(wb_last_error(), " s ago)"));

  wb_rank_info info = WB_RANK_INFO_INIT;
  FX_OK(wb_topic_rank_info(ranks[0], 0, &info));
  assert_int_equal(info.published, 2);
  assert_int_equal(info.writing, 0);
  assert_true(info.published_ns > 0 && info.begin_ns > 0);
  FX_OK(wb_update_begin(ranks[1], VX_TIMEOUT_MS, &u));
  wb_tensor_info ti = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor(u, "t0", &ti));
  FX_OK(wb_topic_rank_info(ranks[0], 1, &info));
  assert_int_equal(info.published, 1);
  assert_int_equal(info.writing, 2);
  FX_OK(wb_update_publish(u, NULL, 0, &latest));
  assert_int_equal(latest, 2);
  FX_OK(vx_await_version(ranks[0], 2));
  FX_OK(wb_topic_rank_info(ranks[0], 1, &info));
  assert_int_equal(info.published, 2);
  assert_int_equal(info.writing, 0);
  for (uint32_t r = 0; r < RANKS; ++r) wb_detach(clients[r]);
}

static void test_a_begin_before_every_rank_sealed_names_the_unsealed(void **state) {
  const fx_broker *b = *state;
  wb_client *clients[RANKS];
  wb_topic *ranks[RANKS];
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_join(b, "m", r, RANKS, 2, TENSORS, &clients[r], &ranks[r]));
  FX_OK(wb_topic_seal_rank(ranks[1], VX_TIMEOUT_MS));
  wb_update *u;
  FX_EXPECT(wb_update_begin(ranks[0], 100, &u), WB_E_TIMEOUT);
  assert_non_null(strstr(wb_last_error(), "rank(s) 2 have not sealed"));
  FX_OK(wb_topic_seal_rank(ranks[2], VX_TIMEOUT_MS));
  FX_OK(vx_publish(ranks[0], 0, 1, NULL));  /* rank 0 sealed at its first begin: the layout is complete */
  for (uint32_t r = 0; r < RANKS; ++r) wb_detach(clients[r]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_waits_and_begins_name_the_rank_that_lags, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_a_begin_before_every_rank_sealed_names_the_unsealed, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
