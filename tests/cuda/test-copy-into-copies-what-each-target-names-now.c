/* wb_snapshot_copy_into finds its targets' tensors by name quickly when a server passes the same names every
 * version (it first tries where the last call found them); these tests change the names, their order and the
 * topic's layout between calls, and check that every copy still comes from the tensor its target names now,
 * that a target naming nothing copies nothing, and that threads copying in different orders do not mix up.
 * Host tensors: no GPU needed. */
#include <pthread.h>

#include "fixture.h"

#define TENSORS 4
#define ELEMS 64
#define THREADS 4
#define CALLS 500

typedef struct copy_into {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  wb_snapshot *snapshot;
  uint64_t version;
  uint32_t dst[TENSORS][ELEMS];
  wb_copy_target targets[TENSORS];
} copy_into;

static void setup_topic(fx_broker *b, copy_into *t) {
  FX_OK(fx_attach(b, "publisher", &t->pc));
  FX_OK(fx_attach(b, "reader", &t->rc));
  FX_OK(fx_create_topic(t->pc, "model", 2, TENSORS, ELEMS, &t->pub));
  FX_OK(fx_publish(t->pub, (1u << TENSORS) - 1, ELEMS, &t->version));
  FX_OK(wb_topic_open(t->rc, "model", &t->reader));
  FX_OK(wb_snapshot_acquire(t->reader, 0, 1000, &t->snapshot));
  memset(t->dst, 0xee, sizeof(t->dst));
  for (uint32_t i = 0; i < TENSORS; ++i) {
    wb_copy_target target = WB_COPY_TARGET_INIT;
    target.dst = t->dst[i];
    target.dst_bytes = sizeof(t->dst[i]);
    t->targets[i] = target;
  }
}

static void teardown_topic(copy_into *t) {
  FX_OK(wb_snapshot_release(t->snapshot));
  FX_OK(wb_detach(t->rc));
  FX_OK(wb_detach(t->pc));
}

static const char *const names[TENSORS] = {"t0", "t1", "t2", "t3"};

/* Asserts that dst[i] holds tensor t<tensors[i]> of the snapshot's version, for the first count targets. */
static void expect_copies(const copy_into *t, const uint32_t *tensors, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    int64_t bad = fx_check_u32(t->dst[i], ELEMS, t->version, tensors[i]);
    if (bad >= 0) fail_msg("dst[%u] element %lld is not tensor t%u's", i, (long long)bad, tensors[i]);
  }
}

static void targets_by_name_and_by_index_are_copied_on_every_call(void **state) {
  copy_into t;
  setup_topic(*state, &t);
  t.targets[0].name = "t0";
  t.targets[1].index = 2;
  t.targets[2].name = "t3";
  for (int call = 0; call < 3; ++call) {
    memset(t.dst, 0, sizeof(t.dst));
    FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 3, NULL));
    expect_copies(&t, (const uint32_t[]){0, 2, 3}, 3);
  }
  teardown_topic(&t);
}

static void renamed_and_reordered_targets_copy_the_tensors_they_name_now(void **state) {
  copy_into t;
  setup_topic(*state, &t);
  for (uint32_t i = 0; i < TENSORS; ++i) t.targets[i].name = names[i];
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, TENSORS, NULL));
  expect_copies(&t, (const uint32_t[]){0, 1, 2, 3}, TENSORS);
  /* The same array, names reversed: each target is where another tensor was found last time. */
  for (uint32_t i = 0; i < TENSORS; ++i) t.targets[i].name = names[TENSORS - 1 - i];
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, TENSORS, NULL));
  expect_copies(&t, (const uint32_t[]){3, 2, 1, 0}, TENSORS);
  /* A name rewritten in place, in the same buffer: compared again, not remembered by address. */
  char name[8] = "t3";
  t.targets[0].name = name;
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 1, NULL));
  name[1] = '1';
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 1, NULL));
  expect_copies(&t, (const uint32_t[]){1}, 1);
  teardown_topic(&t);
}

static void targets_are_found_after_the_layout_changes(void **state) {
  copy_into t;
  setup_topic(*state, &t);
  t.targets[0].name = "t2";
  t.targets[1].name = "t1";
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL));
  /* A view added between calls changes the reader's layout; the names still lead to the same tensors. */
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  v.name = "t1.head";
  v.parent = "t1";
  v.dtype = WB_DTYPE_U32;
  v.ndim = 1;
  v.shape[0] = ELEMS / 2;
  v.strides[0] = 1;
  FX_OK(wb_tensor_view(t.reader, &v));
  memset(t.dst, 0, sizeof(t.dst));
  t.targets[2].name = "t1.head";
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 3, NULL));
  expect_copies(&t, (const uint32_t[]){2, 1}, 2);
  int64_t bad = fx_check_u32(t.dst[2], ELEMS / 2, t.version, 1);
  if (bad >= 0) fail_msg("the view's element %lld is not t1's", (long long)bad);
  teardown_topic(&t);
}

static void a_target_naming_nothing_copies_nothing(void **state) {
  copy_into t;
  setup_topic(*state, &t);
  t.targets[0].name = "t0";
  t.targets[1].name = "t1";
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL));
  memset(t.dst, 0xee, sizeof(t.dst));
  t.targets[1].name = "missing";  /* where "t1" was found last time */
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "targets[1]"));
  assert_non_null(strstr(wb_last_error(), "'missing'"));
  t.targets[1].name = "";
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_NAME_TOO_LONG);
  assert_non_null(strstr(wb_last_error(), "targets[1]"));
  t.targets[1].name = NULL;
  t.targets[1].index = TENSORS;
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "index 4"));
  for (size_t i = 0; i < ELEMS; ++i) assert_int_equal(t.dst[0][i], 0xeeeeeeeeu);  /* target 0 untouched */
  teardown_topic(&t);
}

typedef struct copier {
  wb_snapshot *snapshot;
  uint64_t version;
  uint32_t rotation;  /* target i names tensor (i + rotation) % TENSORS: each thread its own order */
  int failures;
} copier;

static void *copy_repeatedly(void *arg) {
  copier *c = arg;
  uint32_t dst[TENSORS][ELEMS];
  wb_copy_target targets[TENSORS];
  for (uint32_t i = 0; i < TENSORS; ++i) {
    wb_copy_target target = WB_COPY_TARGET_INIT;
    target.name = names[(i + c->rotation) % TENSORS];
    target.dst = dst[i];
    target.dst_bytes = sizeof(dst[i]);
    targets[i] = target;
  }
  for (int call = 0; call < CALLS; ++call) {
    memset(dst, 0, sizeof(dst));
    if (wb_snapshot_copy_into(c->snapshot, targets, TENSORS, NULL) != WB_OK) {
      c->failures++;
      continue;
    }
    for (uint32_t i = 0; i < TENSORS; ++i) {
      if (fx_check_u32(dst[i], ELEMS, c->version, (i + c->rotation) % TENSORS) >= 0) c->failures++;
    }
  }
  return NULL;
}

/* The topic remembers where its last copy-into found each target: threads in other orders race on that. */
static void threads_copying_in_different_orders_each_get_their_own_tensors(void **state) {
  copy_into t;
  setup_topic(*state, &t);
  pthread_t threads[THREADS];
  copier copiers[THREADS];
  for (uint32_t i = 0; i < THREADS; ++i) {
    copiers[i] = (copier){t.snapshot, t.version, i, 0};
    assert_int_equal(pthread_create(&threads[i], NULL, copy_repeatedly, &copiers[i]), 0);
  }
  for (uint32_t i = 0; i < THREADS; ++i) {
    pthread_join(threads[i], NULL);
    assert_int_equal(copiers[i].failures, 0);
  }
  teardown_topic(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(targets_by_name_and_by_index_are_copied_on_every_call, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(renamed_and_reordered_targets_copy_the_tensors_they_name_now, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(targets_are_found_after_the_layout_changes, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_target_naming_nothing_copies_nothing, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(threads_copying_in_different_orders_each_get_their_own_tensors, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
