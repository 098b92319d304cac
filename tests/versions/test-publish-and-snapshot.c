/* A publisher's update becomes one version with its metadata; a snapshot leases a version and shows each
 * tensor as the version that last changed it; versions not yet published are WB_E_NOT_FOUND, versions the
 * topic no longer keeps WB_E_EXPIRED; the update's state machine refuses what does not fit. */
#include <time.h>

#include "fixture.h"

#define ELEMS 1000

typedef struct topic_pair {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
} topic_pair;

static void open_pair(fx_broker *b, uint32_t replicas, topic_pair *p) {
  FX_OK(fx_attach(b, "publisher", &p->pc));
  FX_OK(fx_attach(b, "reader", &p->rc));
  FX_OK(fx_create_topic(p->pc, "model", replicas, 3, ELEMS, &p->pub));
  FX_OK(wb_topic_open(p->rc, "model", &p->reader));
}

static void close_pair(topic_pair *p) {
  FX_OK(wb_detach(p->rc));
  FX_OK(wb_detach(p->pc));
}

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void publish_then_read(void **state) {
  topic_pair p;
  open_pair(*state, 2, &p);
  wb_snapshot *s;
  FX_EXPECT(wb_snapshot_acquire(p.reader, 0, 0, &s), WB_E_NOT_FOUND); /* nothing published yet */

  wb_update *u;
  uint64_t v = 0, published = 0;
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  FX_OK(wb_update_version(u, &v));
  assert_int_equal(v, 1);
  wb_tensor_info by_name = WB_TENSOR_INFO_INIT, by_index = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor(u, "t1", &by_name));
  FX_OK(wb_update_tensor_at(u, 1, &by_index));
  assert_ptr_equal(by_name.data, by_index.data);
  assert_int_equal(by_name.index, 1);
  for (uint32_t i = 0; i < 3; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_tensor_at(u, i, &info));
    fx_fill_u32(info.data, ELEMS, v, i);
  }
  const char meta[] = "step=1";
  uint64_t before = realtime_ns();
  FX_OK(wb_update_publish(u, meta, sizeof(meta), &published));
  uint64_t after = realtime_ns();
  assert_int_equal(published, 1);
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(p.reader, &latest));
  assert_int_equal(latest, 1);

  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, 1);
  const void *data = NULL;
  uint32_t size = 0;
  uint64_t ts = 0;
  FX_OK(wb_snapshot_metadata(s, &data, &size, &ts));
  assert_int_equal(size, sizeof(meta));
  assert_memory_equal(data, meta, sizeof(meta));
  assert_true(ts >= before - 1000000 && ts <= after + 1000000); /* CLOCK_REALTIME at publish */
  for (uint32_t i = 0; i < 3; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, 1), 0);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_tensor_at(s, 2, &info));
  assert_string_equal(info.name, "t2");
  assert_int_equal(info.version, 1);
  assert_int_equal(fx_check_u32(info.data, ELEMS, 1, 2), -1);
  FX_OK(wb_snapshot_release(s));
  close_pair(&p);
}

static void unchanged_tensors_keep_their_version(void **state) {
  /* Each replica count: a version that changes only some tensors leaves the others at the version that
   * last wrote them, with those bytes (R >= 2 must find them in another replica). */
  for (uint32_t r = 1; r <= 3; ++r) {
    fx_broker *b = *state;
    topic_pair p;
    char name[16];
    snprintf(name, sizeof(name), "model-r%u", r);
    FX_OK(fx_attach(b, "publisher", &p.pc));
    FX_OK(fx_attach(b, "reader", &p.rc));
    FX_OK(fx_create_topic(p.pc, name, r, 3, ELEMS, &p.pub));
    FX_OK(wb_topic_open(p.rc, name, &p.reader));
    FX_OK(fx_publish(p.pub, 7, ELEMS, NULL)); /* v1: all */
    FX_OK(fx_publish(p.pub, 1, ELEMS, NULL)); /* v2: t0 */
    FX_OK(fx_publish(p.pub, 2, ELEMS, NULL)); /* v3: t1 */
    FX_OK(fx_publish(p.pub, 1, ELEMS, NULL)); /* v4: t0 */
    FX_OK(fx_publish(p.pub, 0, ELEMS, NULL)); /* v5: metadata only */
    wb_snapshot *s;
    uint64_t v;
    FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
    FX_OK(wb_snapshot_version(s, &v));
    assert_int_equal(v, 5);
    assert_int_equal(fx_check_tensor(s, 0, ELEMS, 4), 0);
    assert_int_equal(fx_check_tensor(s, 1, ELEMS, 3), 0);
    assert_int_equal(fx_check_tensor(s, 2, ELEMS, 1), 0);
    FX_OK(wb_snapshot_release(s));
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_topic_tensor(p.reader, 1, &info)); /* layout query: the latest version that wrote it */
    assert_int_equal(info.version, 3);
    close_pair(&p);
  }
}

static void acquire_by_version(void **state) {
  topic_pair p;
  open_pair(*state, 3, &p);
  wb_snapshot *s;
  uint64_t v;
  FX_OK(fx_publish(p.pub, 7, ELEMS, NULL));
  FX_OK(fx_publish(p.pub, 7, ELEMS, NULL));
  FX_OK(wb_snapshot_acquire(p.reader, 1, 1000, &s)); /* R = 3 keeps the previous version */
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, 1);
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_snapshot_acquire(p.reader, 2, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 2, ELEMS, 2), 0);
  FX_OK(wb_snapshot_release(s));
  FX_EXPECT(wb_snapshot_acquire(p.reader, 3, 0, &s), WB_E_NOT_FOUND); /* not published yet */
  FX_EXPECT(wb_snapshot_acquire(p.reader, 1000, 0, &s), WB_E_NOT_FOUND);
  close_pair(&p);
}

static void older_than_floor_is_expired(void **state) {
  /* R = 2: while v4 is being written into the replica that held v2, only v3 is kept. */
  topic_pair p;
  open_pair(*state, 2, &p);
  for (int i = 0; i < 3; ++i) FX_OK(fx_publish(p.pub, 7, ELEMS, NULL));
  wb_update *u;
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  wb_snapshot *s;
  FX_EXPECT(wb_snapshot_acquire(p.reader, 1, 0, &s), WB_E_EXPIRED);
  FX_OK(wb_snapshot_acquire(p.reader, 3, 0, &s)); /* the latest stays readable during the update */
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 3), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_update_abort(u));
  close_pair(&p);
}

static void snapshot_lookups_refuse_unknown_names(void **state) {
  topic_pair p;
  char name[WB_NAME_MAX + 2];
  open_pair(*state, 2, &p);
  FX_OK(fx_publish(p.pub, 7, ELEMS, NULL));
  wb_snapshot *s;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_acquire(p.reader, 0, 1000, &s));
  FX_EXPECT(wb_snapshot_tensor(s, "t3", &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_tensor(s, "", &info), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_snapshot_tensor(s, fx_name_of_length(name, WB_NAME_MAX + 1), &info), WB_E_NAME_TOO_LONG);
  FX_EXPECT(wb_snapshot_tensor_at(s, 3, &info), WB_E_NOT_FOUND);
  FX_OK(wb_snapshot_release(s));
  close_pair(&p);
}

static void metadata_limits(void **state) {
  topic_pair p;
  static unsigned char big[WB_METADATA_MAX + 1];
  open_pair(*state, 2, &p);
  for (size_t i = 0; i < sizeof(big); ++i) big[i] = (unsigned char)(i * 31);
  wb_update *u;
  uint64_t v = 0, latest = 99;
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  FX_EXPECT(wb_update_publish(u, big, WB_METADATA_MAX + 1, &v), WB_E_SIZE);
  FX_OK(wb_topic_latest(p.reader, &latest));
  assert_int_equal(latest, 0);
  /* The refused publish left the update open: fix the call and publish it. */
  FX_OK(wb_update_publish(u, big, WB_METADATA_MAX, &v));
  assert_int_equal(v, 1);
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 2);

  wb_snapshot *s;
  const void *data;
  uint32_t size = 1;
  uint64_t ts;
  FX_OK(wb_snapshot_acquire(p.reader, 1, 1000, &s));
  FX_OK(wb_snapshot_metadata(s, &data, &size, &ts));
  assert_int_equal(size, WB_METADATA_MAX);
  assert_memory_equal(data, big, WB_METADATA_MAX);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_snapshot_acquire(p.reader, 2, 1000, &s));
  FX_OK(wb_snapshot_metadata(s, &data, &size, &ts));
  assert_int_equal(size, 0);
  FX_OK(wb_snapshot_release(s));
  close_pair(&p);
}

static void update_state_machine(void **state) {
  topic_pair p;
  open_pair(*state, 2, &p);
  wb_update *u, *second;
  uint64_t v = 0;
  FX_EXPECT(wb_update_begin(p.reader, 0, &u), WB_E_ROLE); /* a reader's handle */
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  FX_EXPECT(wb_update_begin(p.pub, 0, &second), WB_E_STATE); /* one update at a time */
  FX_OK(wb_update_abort(u));
  /* The aborted update published nothing: the next one is still version 1. */
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  FX_OK(wb_update_version(u, &v));
  assert_int_equal(v, 1);
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 1);
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(p.reader, &latest));
  assert_int_equal(latest, 1);
  close_pair(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(publish_then_read, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(unchanged_tensors_keep_their_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(acquire_by_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(older_than_floor_is_expired, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(snapshot_lookups_refuse_unknown_names, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(metadata_limits, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(update_state_machine, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
