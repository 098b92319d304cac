/* wb_update_set_version makes an update publish a chosen version number after the latest (what `weightbus
 * relay` needs to publish the source's numbers): readers see it with its tensors and metadata, unchanged
 * tensors keep their version, the skipped numbers are never published, the next update follows it, and a
 * publisher killed mid-update leaves the topic as after any dead update. Every error it returns. */
#include "fixture.h"

#define ELEMS 256

static void publish_at(wb_topic *t, uint64_t version, uint32_t mask) {
  wb_update *u;
  FX_OK(wb_update_begin(t, 1000, &u));
  FX_OK(wb_update_set_version(u, version));
  uint64_t v = 0;
  FX_OK(wb_update_version(u, &v));
  assert_int_equal(v, version);
  for (uint32_t i = 0; i < 3; ++i) {
    if (!(mask & (1u << i))) continue;
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_tensor_at(u, i, &info));
    fx_fill_u32(info.data, ELEMS, version, i);
  }
  FX_OK(wb_update_publish(u, &version, sizeof(version), &v));
  assert_int_equal(v, version);
}

static void check_version(wb_topic *reader, uint64_t version, const uint64_t written[3]) {
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, 1000, &s));
  uint64_t v = 0;
  FX_OK(wb_snapshot_version(s, &v));
  assert_int_equal(v, version);
  const void *data;
  uint32_t size;
  FX_OK(wb_snapshot_metadata(s, &data, &size, NULL));
  assert_int_equal(size, sizeof(uint64_t));
  assert_memory_equal(data, &version, sizeof(version));
  for (uint32_t i = 0; i < 3; ++i) assert_int_equal(fx_check_tensor(s, i, ELEMS, written[i]), 0);
  FX_OK(wb_snapshot_release(s));
}

static void chosen_numbers_with_gaps(uint32_t replicas, void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  FX_OK(fx_attach(*state, "publisher", &pc));
  FX_OK(fx_attach(*state, "reader", &rc));
  FX_OK(fx_create_topic(pc, "model", replicas, 3, ELEMS, &pub));
  FX_OK(wb_topic_open(rc, "model", &reader));

  publish_at(pub, 5, 7);
  check_version(reader, 5, (const uint64_t[3]){5, 5, 5});
  publish_at(pub, 9, 2); /* only t1 changes: t0 and t2 keep version 5's bytes */
  check_version(reader, 9, (const uint64_t[3]){5, 9, 5});
  wb_snapshot *s;
  FX_EXPECT(wb_snapshot_acquire(reader, 7, 0, &s), WB_E_EXPIRED); /* skipped: never published */
  FX_OK(wb_snapshot_acquire(reader, 9, 0, &s));
  FX_OK(wb_snapshot_release(s));

  uint64_t v = 0; /* without the call, the next update is latest + 1 as always */
  FX_OK(fx_publish(pub, 1, ELEMS, &v));
  assert_int_equal(v, 10);
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(reader, &latest));
  assert_int_equal(latest, 10);
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

static void r1_gaps(void **state) { chosen_numbers_with_gaps(1, state); }
static void r2_gaps(void **state) { chosen_numbers_with_gaps(2, state); }

static void every_error(void **state) {
  wb_client *pc;
  wb_topic *pub;
  FX_OK(fx_attach(*state, "publisher", &pc));
  FX_OK(fx_create_topic(pc, "model", 2, 3, ELEMS, &pub));
  publish_at(pub, 4, 7);

  FX_EXPECT(wb_update_set_version(NULL, 8), WB_E_INVAL);
  wb_update *u;
  FX_OK(wb_update_begin(pub, 1000, &u));
  FX_EXPECT(wb_update_set_version(u, 4), WB_E_INVAL); /* the latest itself */
  FX_EXPECT(wb_update_set_version(u, 2), WB_E_INVAL); /* before it */
  FX_EXPECT(wb_update_set_version(u, 0), WB_E_INVAL);
  FX_EXPECT(wb_update_set_version(u, WB_VERSION_MAX + 1), WB_E_INVAL);
  uint64_t v = 0;
  FX_OK(wb_update_version(u, &v));
  assert_int_equal(v, 5); /* the refused calls changed nothing */
  FX_OK(wb_update_set_version(u, 6));
  FX_OK(wb_update_set_version(u, 8)); /* may be called again until a tensor is handed out */
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor_at(u, 0, &info));
  fx_fill_u32(info.data, ELEMS, 8, 0);
  FX_EXPECT(wb_update_set_version(u, 12), WB_E_STATE);
  FX_OK(wb_update_version(u, &v));
  assert_int_equal(v, 8);
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 8);

  FX_OK(wb_update_begin(pub, 1000, &u)); /* the highest number there is, once */
  FX_OK(wb_update_set_version(u, WB_VERSION_MAX));
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, WB_VERSION_MAX);
  FX_EXPECT(wb_update_begin(pub, 1000, &u), WB_E_NOSPC);
  FX_OK(wb_detach(pc));
}

/* A publisher that dies after handing out a tensor of a chosen version: R = 1 marks the topic dirty until a
 * takeover rewrites the tensor, and the takeover may choose a number again. */
typedef struct doomed {
  const fx_broker *broker;
  uint32_t *written;
} doomed;

static int doomed_main(void *arg) {
  doomed *d = arg;
  wb_client *c;
  wb_topic *t;
  CHILD_OK(fx_attach(d->broker, "doomed", &c));
  CHILD_OK(fx_create_topic(c, "model", 1, 3, ELEMS, &t));
  CHILD_OK(fx_publish(t, 7, ELEMS, NULL));
  wb_update *u;
  CHILD_OK(wb_update_begin(t, 1000, &u));
  CHILD_OK(wb_update_set_version(u, 50));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  CHILD_OK(wb_update_tensor_at(u, 0, &info));
  fx_fill_u32(info.data, ELEMS / 2, 50, 0);
  fx_set_word(d->written, 1);
  for (;;) pause();
}

static void dead_publisher_of_a_chosen_version(void **state) {
  doomed d = {*state, fx_shared_alloc(sizeof(uint32_t))};
  pid_t child = fx_spawn(doomed_main, &d);
  assert_int_equal(fx_wait_word(d.written, 1, 10000), 0);
  fx_kill9(child);
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "takeover", &c));
  FX_OK(fx_take_over(c, "model", 1, 3, ELEMS, &t));
  wb_snapshot *s;
  FX_EXPECT(wb_snapshot_acquire(t, 0, 0, &s), WB_E_DIRTY);
  publish_at(t, 50, 1);
  uint64_t latest = 0;
  FX_OK(wb_topic_latest(t, &latest));
  assert_int_equal(latest, 50);
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &s));
  assert_int_equal(fx_check_tensor(s, 0, ELEMS, 50), 0);
  assert_int_equal(fx_check_tensor(s, 1, ELEMS, 1), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(c));
  fx_shared_free(d.written, sizeof(uint32_t));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(r1_gaps, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(r2_gaps, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(every_error, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(dead_publisher_of_a_chosen_version, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
