/* --max-topics-per-client: a client that created its limit of topics is refused another with WB_E_NOSPC
 * naming the flag, while taking a topic over needs no new entry and other clients keep their own budget. */
#include "fixture.h"

static fx_broker_opts two_per_client = {.max_topics_per_client = 2};

static void a_third_topic_is_refused_and_others_still_create(void **state) {
  wb_client *a, *b;
  wb_topic *t1, *t2, *x;
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(fx_attach(*state, "a", &a));
  FX_OK(fx_attach(*state, "b", &b));
  FX_OK(wb_topic_create(a, "one", &o, &t1));
  FX_OK(wb_topic_create(a, "two", &o, &t2));
  FX_EXPECT(wb_topic_create(a, "three", &o, &x), WB_E_NOSPC);
  assert_non_null(strstr(wb_last_error(), "--max-topics-per-client"));
  /* Nothing was half-made: "three" does not exist. */
  FX_EXPECT(wb_topic_open(b, "three", &x), WB_E_NOT_FOUND);
  /* Taking over an existing topic creates no entry. */
  FX_OK(wb_topic_close(t1));
  FX_OK(wb_topic_create(a, "one", &o, &t1));
  /* Another client has its own budget. */
  FX_OK(wb_topic_create(b, "three", &o, &x));
  FX_OK(wb_detach(b));
  FX_OK(wb_detach(a));
}

static void a_new_connection_starts_with_a_fresh_budget(void **state) {
  wb_client *a;
  wb_topic *t;
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(fx_attach(*state, "a", &a));
  FX_OK(wb_topic_create(a, "one", &o, &t));
  FX_OK(wb_topic_create(a, "two", &o, &t));
  FX_OK(wb_detach(a));
  /* The limit bounds one connection; topics live on in the registry's own table (--max-topics). */
  FX_OK(fx_attach(*state, "a-again", &a));
  FX_OK(wb_topic_create(a, "three", &o, &t));
  FX_OK(wb_detach(a));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(a_third_topic_is_refused_and_others_still_create, fx_setup,
                                               fx_teardown, &two_per_client),
      cmocka_unit_test_prestate_setup_teardown(a_new_connection_starts_with_a_fresh_budget, fx_setup, fx_teardown,
                                               &two_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
