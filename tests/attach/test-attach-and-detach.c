/* wb_attach finds the broker through options or $WEIGHTBUS_SOCKET, each attachment gets its own client slot,
 * and wb_detach closes everything the client still holds: its leases stop blocking publishers. */
#include <stdlib.h>

#include "fixture.h"

static void attach_with_options_and_detach(void **state) {
  fx_broker *b = *state;
  wb_client *c1, *c2;
  uint32_t id1 = UINT32_MAX, id2 = UINT32_MAX;
  FX_OK(fx_attach(b, "first", &c1));
  FX_OK(fx_attach(b, "second", &c2)); /* one process may attach more than once */
  FX_OK(wb_client_id(c1, &id1));
  FX_OK(wb_client_id(c2, &id2));
  assert_int_not_equal(id1, id2);
  FX_EXPECT(wb_client_id(c1, NULL), WB_E_INVAL);
  FX_EXPECT(wb_client_id(NULL, &id1), WB_E_INVAL);
  FX_OK(wb_detach(c1));
  FX_OK(wb_detach(c2));
  FX_EXPECT(wb_detach(NULL), WB_E_INVAL);
}

static void attach_through_environment(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  setenv("WEIGHTBUS_SOCKET", b->socket_path, 1);
  FX_OK(wb_attach(NULL, &c)); /* opts NULL: defaults, socket from the environment */
  FX_OK(wb_detach(c));
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  FX_OK(wb_attach(&o, &c));
  FX_OK(wb_detach(c));
  unsetenv("WEIGHTBUS_SOCKET");
}

static void detach_releases_leases_and_closes_topics(void **state) {
  fx_broker *b = *state;
  wb_client *pub, *reader;
  wb_topic *pt, *rt;
  wb_snapshot *s;
  wb_update *u;
  FX_OK(fx_attach(b, "pub", &pub));
  FX_OK(fx_attach(b, "reader", &reader));
  FX_OK(fx_create_topic(pub, "model", 1, 1, 64, &pt));
  FX_OK(fx_publish(pt, 1, 64, NULL));
  FX_OK(wb_topic_open(reader, "model", &rt));
  FX_OK(wb_snapshot_acquire(rt, 0, 1000, &s));
  FX_EXPECT(wb_update_begin(pt, 0, &u), WB_E_TIMEOUT); /* R = 1: the lease blocks the update */
  /* Detaching with the topic and snapshot still open releases the lease. */
  FX_OK(wb_detach(reader));
  FX_OK(wb_update_begin(pt, 1000, &u));
  FX_OK(wb_update_abort(u));

  /* A publisher that detaches with an update open leaves the topic to a later publisher. */
  FX_OK(wb_update_begin(pt, 1000, &u));
  FX_OK(wb_detach(pub));
  wb_client *next;
  wb_topic *nt;
  uint64_t latest = 0;
  FX_OK(fx_attach(b, "next", &next));
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = 1;
  FX_OK(wb_topic_create(next, "model", &o, &nt));
  FX_OK(wb_topic_latest(nt, &latest));
  assert_int_equal(latest, 1);
  FX_OK(wb_detach(next));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(attach_with_options_and_detach, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(attach_through_environment, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(detach_releases_leases_and_closes_topics, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
