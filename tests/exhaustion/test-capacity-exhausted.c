/* Every table of a broker started with tiny capacities runs out with WB_E_NOSPC, leaves nothing half-made,
 * and (where entries are freed) works again once something is freed. */
#include "fixture.h"

/* One client fills each table: its per-client limit (half of the table by default) is raised to the table's. */
static fx_broker_opts two_topics = {.max_topics = 2, .max_topics_per_client = 2};
static fx_broker_opts three_tensors = {.max_tensors = 3, .max_tensors_per_client = 3};
static fx_broker_opts two_allocations = {.max_allocations = 2, .max_allocations_per_client = 2};
static fx_broker_opts two_clients = {.max_clients = 2};
static fx_broker_opts two_leases = {.leases_per_client = 2};

static wb_tensor_spec u8_spec(const char *name) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_U8;
  s.ndim = 1;
  s.shape[0] = 16;
  return s;
}

static uint32_t tensor_count(wb_topic *t) {
  uint32_t n = UINT32_MAX;
  FX_OK(wb_topic_tensor_count(t, &n));
  return n;
}

static void topic_table(void **state) {
  wb_client *c;
  wb_topic *a, *b, *x;
  FX_OK(fx_attach(*state, NULL, &c));
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c, "a", &o, &a));
  FX_OK(wb_topic_create(c, "b", &o, &b));
  FX_EXPECT(wb_topic_create(c, "c", &o, &x), WB_E_NOSPC);
  /* Topics live until the broker exits: closing one frees no entry, but taking it over needs none. */
  FX_OK(wb_topic_close(a));
  FX_EXPECT(wb_topic_create(c, "c", &o, &x), WB_E_NOSPC);
  FX_OK(wb_topic_create(c, "a", &o, &a));
  uint32_t count = 0;
  FX_OK(wb_list_topics(c, NULL, 0, &count));
  assert_int_equal(count, 2);
  FX_OK(wb_detach(c));
}

static void tensor_table(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, NULL, &c));
  FX_OK(fx_create_topic(c, "m", 2, 0, 0, &t));
  wb_tensor_spec two[2] = {u8_spec("a"), u8_spec("b")};
  FX_OK(wb_tensor_alloc(t, two, 2));
  wb_tensor_spec more[2] = {u8_spec("c"), u8_spec("d")};
  FX_EXPECT(wb_tensor_alloc(t, more, 2), WB_E_NOSPC); /* all or nothing: "c" is not created */
  assert_int_equal(tensor_count(t), 2);
  /* Views take tensor entries too. */
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  v.name = "a-view";
  v.parent = "a";
  v.dtype = WB_DTYPE_U8;
  v.ndim = 1;
  v.shape[0] = 4;
  v.strides[0] = 1;
  FX_OK(wb_tensor_view(t, &v));
  v.name = "another-view";
  FX_EXPECT(wb_tensor_view(t, &v), WB_E_NOSPC);
  FX_EXPECT(wb_tensor_alloc(t, more, 1), WB_E_NOSPC);
  assert_int_equal(tensor_count(t), 3);
  FX_OK(wb_detach(c));
}

static void allocation_table(void **state) {
  /* Each wb_tensor_alloc call makes one allocation. */
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, NULL, &c));
  FX_OK(fx_create_topic(c, "m", 2, 0, 0, &t));
  wb_tensor_spec a = u8_spec("a"), b = u8_spec("b"), x[2] = {u8_spec("c"), u8_spec("d")};
  FX_OK(wb_tensor_alloc(t, &a, 1));
  FX_OK(wb_tensor_alloc(t, &b, 1));
  FX_EXPECT(wb_tensor_alloc(t, x, 2), WB_E_NOSPC);
  assert_int_equal(tensor_count(t), 2);
  /* Re-declaring existing tensors allocates nothing, so it still works. */
  FX_OK(wb_tensor_alloc(t, &a, 1));
  FX_OK(wb_detach(c));
}

static void client_table(void **state) {
  wb_client *a, *b, *x;
  FX_OK(fx_attach(*state, "a", &a));
  FX_OK(fx_attach(*state, "b", &b));
  FX_EXPECT(fx_attach(*state, "x", &x), WB_E_NOSPC);
  FX_OK(wb_detach(a));
  /* wb_detach returns once the broker has freed the slot. */
  FX_OK(fx_attach(*state, "x", &x));
  FX_OK(wb_detach(x));
  FX_OK(wb_detach(b));
}

static void lease_slots(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  wb_snapshot *s1, *s2, *s3;
  FX_OK(fx_attach(*state, "publisher", &pc));
  FX_OK(fx_attach(*state, "reader", &rc));
  FX_OK(fx_create_topic(pc, "m", 3, 1, 4, &pub));
  FX_OK(fx_publish(pub, 1, 4, NULL));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s1));
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s2));
  FX_EXPECT(wb_snapshot_acquire(reader, 0, 1000, &s3), WB_E_NOSPC);
  FX_OK(wb_snapshot_release(s1));
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s3));
  FX_OK(wb_snapshot_release(s2));
  FX_OK(wb_snapshot_release(s3));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(topic_table, fx_setup, fx_teardown, &two_topics),
      cmocka_unit_test_prestate_setup_teardown(tensor_table, fx_setup, fx_teardown, &three_tensors),
      cmocka_unit_test_prestate_setup_teardown(allocation_table, fx_setup, fx_teardown, &two_allocations),
      cmocka_unit_test_prestate_setup_teardown(client_table, fx_setup, fx_teardown, &two_clients),
      cmocka_unit_test_prestate_setup_teardown(lease_slots, fx_setup, fx_teardown, &two_leases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
