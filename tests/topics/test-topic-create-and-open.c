/* wb_topic_create makes the caller a topic's one publisher, wb_topic_open opens it as a reader; names are
 * 1..WB_NAME_MAX bytes, replicas 1..WB_MAX_REPLICAS; a second publisher of a live topic is WB_E_BUSY, and once
 * the publisher closed the topic a new one takes it over with its tensors and versions. */
#include "fixture.h"

typedef struct two_clients {
  wb_client *a, *b;
} two_clients;

static void attach_two(fx_broker *b, two_clients *c) {
  FX_OK(fx_attach(b, "a", &c->a));
  FX_OK(fx_attach(b, "b", &c->b));
}

static void detach_two(two_clients *c) {
  FX_OK(wb_detach(c->a));
  FX_OK(wb_detach(c->b));
}

static void create_then_open(void **state) {
  two_clients c;
  wb_topic *pub, *reader;
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  attach_two(*state, &c);
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = 3;
  FX_OK(wb_topic_create(c.a, "policy", &o, &pub));
  FX_OK(wb_topic_get_info(pub, &info));
  assert_string_equal(info.name, "policy");
  assert_int_equal(info.replicas, 3);
  assert_int_equal(info.latest, 0);
  assert_int_equal(info.tensor_count, 0);
  assert_int_equal(info.publisher_pid, (uint32_t)getpid());
  assert_int_equal(info.dirty, 0);

  FX_OK(wb_topic_open(c.b, "policy", &reader));
  wb_topic_info rinfo = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(reader, &rinfo));
  assert_string_equal(rinfo.name, "policy");
  assert_int_equal(rinfo.replicas, 3);
  assert_int_equal(rinfo.publisher_pid, (uint32_t)getpid());
  uint64_t latest = 99;
  FX_OK(wb_topic_latest(reader, &latest));
  assert_int_equal(latest, 0);
  FX_OK(wb_topic_close(reader));
  FX_OK(wb_topic_close(pub));
  detach_two(&c);
}

static void default_options_mean_two_replicas(void **state) {
  two_clients c;
  wb_topic *t;
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  attach_two(*state, &c);
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c.a, "m", &o, &t));
  FX_OK(wb_topic_get_info(t, &info));
  assert_int_equal(info.replicas, 2);
  detach_two(&c);
}

static void names_are_checked(void **state) {
  two_clients c;
  wb_topic *t;
  char name[WB_NAME_MAX + 2];
  attach_two(*state, &c);
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_EXPECT(wb_topic_create(c.a, "", &o, &t), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_topic_create(c.a, fx_name_of_length(name, WB_NAME_MAX + 1), &o, &t), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_topic_create(c.a, NULL, &o, &t), WB_E_INVAL);
  FX_EXPECT(wb_topic_open(c.b, "", &t), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_topic_open(c.b, fx_name_of_length(name, WB_NAME_MAX + 1), &t), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_topic_open(c.b, NULL, &t), WB_E_INVAL);

  /* Exactly WB_NAME_MAX bytes, and UTF-8, are names like any other. */
  wb_topic *longest, *reader;
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_create(c.a, fx_name_of_length(name, WB_NAME_MAX), &o, &longest));
  FX_OK(wb_topic_open(c.b, name, &reader));
  FX_OK(wb_topic_get_info(reader, &info));
  assert_string_equal(info.name, name);
  FX_OK(wb_topic_create(c.a, "mod\xc3\xa8le-\xe6\xa8\xa1\xe5\x9e\x8b", &o, &t));
  detach_two(&c);
}

static void replicas_out_of_range_are_inval(void **state) {
  two_clients c;
  wb_topic *t;
  attach_two(*state, &c);
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = 0;
  FX_EXPECT(wb_topic_create(c.a, "r0", &o, &t), WB_E_INVAL);
  o.replicas = WB_MAX_REPLICAS + 1;
  FX_EXPECT(wb_topic_create(c.a, "r5", &o, &t), WB_E_INVAL);
  o.replicas = WB_MAX_REPLICAS;
  FX_OK(wb_topic_create(c.a, "r4", &o, &t));
  o.replicas = 1;
  FX_OK(wb_topic_create(c.a, "r1", &o, &t));
  detach_two(&c);
}

static void unknown_topic_is_not_found(void **state) {
  two_clients c;
  wb_topic *t;
  attach_two(*state, &c);
  FX_EXPECT(wb_topic_open(c.b, "nothing-here", &t), WB_E_NOT_FOUND);
  detach_two(&c);
}

static void second_publisher_is_busy(void **state) {
  two_clients c;
  wb_topic *pub, *other;
  attach_two(*state, &c);
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c.a, "policy", &o, &pub));
  FX_EXPECT(wb_topic_create(c.b, "policy", &o, &other), WB_E_BUSY);
  /* The publisher itself cannot hold it twice either. */
  FX_EXPECT(wb_topic_create(c.a, "policy", &o, &other), WB_E_BUSY);
  detach_two(&c);
}

static void closed_topic_is_taken_over_with_tensors_and_versions(void **state) {
  two_clients c;
  wb_topic *pub, *reader, *next;
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  uint64_t latest = 0;
  uint32_t count = 0;
  attach_two(*state, &c);
  FX_OK(fx_create_topic(c.a, "policy", 2, 2, 32, &pub));
  FX_OK(fx_publish(pub, 3, 32, NULL));
  FX_OK(fx_publish(pub, 1, 32, NULL));
  FX_OK(wb_topic_open(c.b, "policy", &reader));
  FX_OK(wb_topic_close(pub));
  FX_OK(wb_topic_get_info(reader, &info));
  assert_int_equal(info.publisher_pid, 0);
  assert_int_equal(info.latest, 2);

  /* Another client takes over: versions and tensors stay; replicas must match. */
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = 3;
  FX_EXPECT(wb_topic_create(c.b, "policy", &o, &next), WB_E_INVAL);
  o.replicas = 2;
  FX_OK(wb_topic_create(c.b, "policy", &o, &next));
  FX_OK(wb_topic_latest(next, &latest));
  assert_int_equal(latest, 2);
  FX_OK(wb_topic_tensor_count(next, &count));
  assert_int_equal(count, 2);
  FX_OK(wb_topic_get_info(reader, &info));
  assert_int_equal(info.publisher_pid, (uint32_t)getpid());
  uint64_t v = 0;
  FX_OK(fx_publish(next, 2, 32, &v));
  assert_int_equal(v, 3);

  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, 32, 2), 0);
  assert_int_equal(fx_check_tensor(s, 1, 32, 3), 0);
  FX_OK(wb_snapshot_release(s));
  detach_two(&c);
}

static void close_with_snapshot_held_is_state(void **state) {
  two_clients c;
  wb_topic *pub, *reader;
  wb_snapshot *s;
  attach_two(*state, &c);
  FX_OK(fx_create_topic(c.a, "policy", 2, 1, 8, &pub));
  FX_OK(fx_publish(pub, 1, 8, NULL));
  FX_OK(wb_topic_open(c.b, "policy", &reader));
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  FX_EXPECT(wb_topic_close(reader), WB_E_STATE);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_topic_close(reader));
  FX_EXPECT(wb_topic_close(NULL), WB_E_INVAL);
  detach_two(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(create_then_open, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(default_options_mean_two_replicas, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(names_are_checked, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(replicas_out_of_range_are_inval, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(unknown_topic_is_not_found, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(second_publisher_is_busy, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(closed_topic_is_taken_over_with_tensors_and_versions, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(close_with_snapshot_held_is_state, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
