/* wb_broker_get_info describes the broker a client is attached to: its pid, version, name and segment, when it
 * started, every limit with what is used of it, and its counters (versions published, clients reclaimed and the
 * leases they held, adoptions), which go on across a restart that adopts the segment; bad arguments are
 * WB_E_INVAL and a dead broker WB_E_BROKER_GONE. */
#include <time.h>

#include "fixture.h"

static wb_broker_info broker_info_init(void) {
  wb_broker_info init = WB_BROKER_INFO_INIT;
  return init;
}

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Polls until the broker has counted `reclaims` reclaimed clients (it frees a slot when the connection closes). */
static wb_broker_info await_reclaims(wb_client *c, uint64_t reclaims) {
  wb_broker_info info = broker_info_init();
  for (int i = 0; i < 250; ++i) {
    FX_OK(wb_broker_get_info(c, &info));
    if (info.reclaims >= reclaims) break;
    fx_sleep_ms(20);
  }
  assert_int_equal(info.reclaims, reclaims);
  return info;
}

/* A reader that exits holding a lease, without releasing it or detaching. */
static int leave_holding_a_lease(void *arg) {
  const fx_broker *b = arg;
  wb_client *c;
  wb_topic *t;
  wb_snapshot *s;
  CHILD_OK(fx_attach(b, "leaver", &c));
  CHILD_OK(wb_topic_open(c, "policy", &t));
  CHILD_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  return 0;
}

static fx_broker_opts small = {.max_topics = 8, .max_tensors = 64, .max_allocations = 16, .max_clients = 4,
                               .leases_per_client = 5, .ring_slots = 3, .max_ranks = 6};

static void the_broker_is_described(void **state) {
  fx_broker *b = *state;
  const uint64_t before = realtime_ns();
  wb_client *c, *other;
  wb_topic *t, *rank;
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(fx_attach(b, NULL, &other));

  wb_broker_info info = broker_info_init();
  FX_OK(wb_broker_get_info(c, &info));
  assert_int_equal(info.pid, (uint32_t)b->pid);
  assert_int_equal(info.version, WB_VERSION);
  assert_string_equal(info.name, b->name);
  char segment[128];
  snprintf(segment, sizeof segment, "/weightbus-%u-%s", (unsigned)getuid(), b->name);
  assert_string_equal(info.segment, segment);
  assert_true(info.started_ns > before - 60ull * 1000000000u && info.started_ns <= realtime_ns());
  assert_int_equal(info.created_ns, info.started_ns); /* a new segment */
  assert_int_equal(info.max_topics, 8);
  assert_int_equal(info.max_tensors, 64);
  assert_int_equal(info.max_allocations, 16);
  assert_int_equal(info.max_clients, 4);
  assert_int_equal(info.max_ranks, 6);
  assert_int_equal(info.leases_per_client, 5);
  assert_int_equal(info.ring_slots, 3);
  assert_int_equal(info.clients, 2);
  assert_int_equal(info.topics + info.tensors + info.allocations + info.ranks, 0);
  assert_int_equal(info.publishes + info.reclaims + info.reclaimed_leases + info.adoptions, 0);

  /* What is used grows with what is made; publishes count versions. */
  FX_OK(fx_create_topic(c, "policy", 2, 3, 8, &t));
  FX_OK(fx_create_rank(other, "sharded", 2, 0, 2, &rank));
  for (int v = 0; v < 3; ++v) FX_OK(fx_publish(t, 7, 8, NULL));
  FX_OK(wb_broker_get_info(other, &info));
  assert_int_equal(info.topics, 2);
  assert_int_equal(info.tensors, 3);
  assert_int_equal(info.allocations, 1);
  assert_int_equal(info.ranks, 2); /* a Rank entry per rank */
  assert_int_equal(info.publishes, 3);

  /* A detach is a reclaim of nothing; a reader gone with its lease is a reclaim of one lease. */
  FX_OK(wb_topic_close(rank));
  FX_OK(wb_detach(other));
  info = await_reclaims(c, 1);
  assert_int_equal(info.reclaimed_leases, 0);
  assert_int_equal(fx_wait_child(fx_spawn(leave_holding_a_lease, b), 10000), 0);
  info = await_reclaims(c, 2);
  assert_int_equal(info.reclaimed_leases, 1);
  assert_int_equal(info.clients, 1);
  FX_OK(wb_detach(c));
}

static void counters_go_on_across_an_adoption(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(fx_create_topic(c, "policy", 2, 1, 8, &t));
  FX_OK(fx_publish(t, 1, 8, NULL));
  wb_broker_info first = broker_info_init(), later = broker_info_init();
  FX_OK(wb_broker_get_info(c, &first));

  fx_broker_kill9(b);
  fx_sleep_ms(20); /* a start time of its own */
  assert_int_equal(fx_broker_restart(b), 0);
  FX_OK(fx_publish(t, 1, 8, NULL)); /* the client resumes with the successor */
  FX_OK(wb_broker_get_info(c, &later));
  assert_int_equal(later.pid, (uint32_t)b->pid);
  assert_true(later.pid != first.pid);
  assert_int_equal(later.adoptions, 1);
  assert_int_equal(later.publishes, 2);
  assert_int_equal(later.created_ns, first.created_ns);
  assert_true(later.started_ns > first.started_ns);
  assert_string_equal(later.name, first.name);
  assert_string_equal(later.segment, first.segment);
  assert_int_equal(later.max_topics, first.max_topics);
  FX_OK(wb_detach(c));
}

static void bad_arguments_are_refused(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  FX_OK(fx_attach(b, NULL, &c));
  wb_broker_info info = broker_info_init();
  FX_EXPECT(wb_broker_get_info(NULL, &info), WB_E_INVAL);
  fx_expect_message("client or out is NULL", NULL);
  FX_EXPECT(wb_broker_get_info(c, NULL), WB_E_INVAL);
  info.struct_size = 8; /* a struct from a broken caller */
  FX_EXPECT(wb_broker_get_info(c, &info), WB_E_INVAL);
  fx_expect_message("wb_broker_info.struct_size is 8", "_INIT", NULL);
  info.struct_size = sizeof(wb_broker_info) - 8; /* one field short */
  FX_EXPECT(wb_broker_get_info(c, &info), WB_E_INVAL);
  FX_OK(wb_detach(c));
}

static void a_dead_broker_is_reported(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  FX_OK(fx_attach(b, NULL, &c));
  fx_broker_kill9(b);
  wb_broker_info info = broker_info_init();
  int rc = WB_OK;
  for (int i = 0; i < 100 && (rc = wb_broker_get_info(c, &info)) == WB_OK; ++i) fx_sleep_ms(20);
  assert_int_equal(rc, WB_E_BROKER_GONE);
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(the_broker_is_described, fx_setup, fx_teardown, &small),
      cmocka_unit_test_setup_teardown(counters_go_on_across_an_adoption, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_dead_broker_is_reported, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
