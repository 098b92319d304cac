/* Once every rank sealed and the layout is complete, a new shard is WB_E_STATE naming the model and the tensor
 * (its own rank's or another's, a new logical tensor too), while a box its rank registered already is still
 * accepted (a rank taken over runs its set-up again), and sealing again is accepted. */
#include "fixture.h"

static void no_shard_after_completion(void **state) {
  wb_client *c[2];
  wb_topic *t[2];
  for (uint32_t i = 0; i < 2; ++i) {
    FX_OK(fx_attach(*state, "rank", &c[i]));
    FX_OK(fx_create_rank(c[i], "m", 2, i, 2, &t[i]));
    wb_shard_spec s = fx_shard_1d("w", WB_DTYPE_F32, 16, 8 * i, 8);
    FX_OK(wb_shard_alloc(t[i], &s, 1));
    FX_OK(wb_topic_seal_rank(t[i], 5000));
  }
  wb_shard_spec more = fx_shard_1d("extra", WB_DTYPE_F32, 16, 0, 16);
  FX_EXPECT(wb_shard_alloc(t[0], &more, 1), WB_E_STATE);
  fx_expect_message("model 'm' is sealed: cannot add shard 'extra'", NULL);
  wb_shard_spec again = fx_shard_1d("w", WB_DTYPE_F32, 16, 8, 8);
  FX_OK(wb_shard_alloc(t[1], &again, 1));
  FX_OK(wb_topic_seal_rank(t[1], 5000));

  FX_OK(wb_topic_close(t[1]));
  FX_OK(fx_create_rank(c[1], "m", 2, 1, 2, &t[1]));
  FX_OK(wb_shard_alloc(t[1], &again, 1)); /* taken over: the same set-up */
  FX_OK(wb_topic_seal_rank(t[1], 5000));
  wb_shard_spec other = fx_shard_1d("w", WB_DTYPE_F32, 16, 0, 4);
  FX_EXPECT(wb_shard_alloc(t[1], &other, 1), WB_E_LAYOUT); /* overlaps rank 0's: that check comes first */
  for (int i = 0; i < 2; ++i) FX_OK(wb_detach(c[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(no_shard_after_completion, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
