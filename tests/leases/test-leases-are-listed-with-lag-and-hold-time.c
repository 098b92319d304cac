/* wb_list_leases reports every lease held now: its holder (slot and pid), the topic and version, the topic's
 * latest version (so the lag), and how long it has been held; a released lease disappears; the count goes
 * beyond the capacity given; bad arguments are WB_E_INVAL and a dead broker WB_E_BROKER_GONE. */
#include "fixture.h"

static wb_lease_info lease_init(void) {
  wb_lease_info init = WB_LEASE_INFO_INIT;
  return init;
}

static const wb_lease_info *find_lease(const wb_lease_info *list, uint32_t n, uint64_t version) {
  for (uint32_t i = 0; i < n; ++i)
    if (list[i].version == version) return &list[i];
  return NULL;
}

static void leases_show_holder_lag_and_hold_time(void **state) {
  fx_broker *b = *state;
  wb_client *pub, *reader;
  wb_topic *pt, *rt;
  wb_snapshot *old, *newer;
  uint32_t reader_id, count = 99;
  FX_OK(fx_attach(b, "publisher", &pub));
  FX_OK(fx_attach(b, "reader", &reader));
  FX_OK(wb_client_id(reader, &reader_id));
  FX_OK(fx_create_topic(pub, "policy", 3, 1, 8, &pt));
  FX_OK(wb_list_leases(pub, NULL, 0, &count));
  assert_int_equal(count, 0);

  FX_OK(fx_publish(pt, 1, 8, NULL));
  FX_OK(wb_topic_open(reader, "policy", &rt));
  FX_OK(wb_snapshot_acquire(rt, 1, 1000, &old));
  fx_sleep_ms(50);
  FX_OK(fx_publish(pt, 1, 8, NULL));
  FX_OK(fx_publish(pt, 1, 8, NULL));
  FX_OK(wb_snapshot_acquire(rt, 3, 1000, &newer));

  wb_lease_info list[3] = {lease_init(), lease_init(), lease_init()};
  FX_OK(wb_list_leases(pub, list, 1, &count)); /* capacity below the count: the first one */
  assert_int_equal(count, 2);
  assert_int_equal(list[1].version, 0); /* untouched beyond capacity */
  FX_OK(wb_list_leases(pub, list, 3, &count));
  assert_int_equal(count, 2);
  const wb_lease_info *o = find_lease(list, 2, 1), *n = find_lease(list, 2, 3);
  assert_non_null(o);
  assert_non_null(n);
  assert_int_equal(o->client_id, reader_id);
  assert_int_equal(o->pid, (uint32_t)getpid());
  assert_string_equal(o->topic, "policy");
  assert_int_equal(o->latest, 3); /* lag 2 */
  assert_int_equal(n->latest, 3); /* lag 0 */
  assert_true(o->held_ns >= 50 * 1000000ull);
  assert_true(o->held_ns > n->held_ns);
  assert_true(o->held_ns < 60ull * 1000000000ull);

  FX_OK(wb_snapshot_release(old));
  FX_OK(wb_list_leases(reader, list, 3, &count));
  assert_int_equal(count, 1);
  assert_int_equal(list[0].version, 3);
  FX_OK(wb_snapshot_release(newer));
  FX_OK(wb_list_leases(reader, list, 3, &count));
  assert_int_equal(count, 0);
  FX_OK(wb_detach(reader));
  FX_OK(wb_detach(pub));
}

static void bad_arguments_are_refused(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  wb_topic *t;
  wb_snapshot *s;
  uint32_t count;
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(fx_create_topic(c, "t", 2, 1, 8, &t));
  FX_OK(fx_publish(t, 1, 8, NULL));
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  wb_lease_info info = lease_init();
  FX_EXPECT(wb_list_leases(NULL, &info, 1, &count), WB_E_INVAL);
  FX_EXPECT(wb_list_leases(c, NULL, 1, &count), WB_E_INVAL);
  FX_EXPECT(wb_list_leases(c, &info, 1, NULL), WB_E_INVAL);
  info.struct_size = 8; /* a struct from a future or broken caller */
  FX_EXPECT(wb_list_leases(c, &info, 1, &count), WB_E_INVAL);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
}

static void a_dead_broker_is_reported(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  uint32_t count;
  FX_OK(fx_attach(b, NULL, &c));
  fx_broker_kill9(b);
  int rc = WB_OK;
  for (int i = 0; i < 100 && (rc = wb_list_leases(c, NULL, 0, &count)) == WB_OK; ++i) fx_sleep_ms(20);
  assert_int_equal(rc, WB_E_BROKER_GONE);
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(leases_show_holder_lag_and_hold_time, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_dead_broker_is_reported, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
