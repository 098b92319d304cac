/* wb_snapshot_copy_into of host tensors into host memory is a memcpy that needs no CUDA: it works in a library
 * built without cuda.h and in one whose libcuda is missing (forced with $WEIGHTBUS_LIBCUDA, so that the test
 * means the same on GPU machines), with the same checks of its targets. A target on a GPU is WB_E_NO_CUDA there,
 * with a message naming the target and why (no cuda.h at build time, or no libcuda), and nothing is copied. */
#include <stdlib.h>

#include "fixture.h"

#define ELEMS 256

/* What the library says without CUDA: its build had no cuda.h, or it cannot load libcuda. */
#if WB_TEST_CUDA_PART
#define NO_CUDA_REASON "cannot load the CUDA driver /nonexistent/libcuda.so.1"
#else
#define NO_CUDA_REASON "built without CUDA headers (cuda.h)"
#endif

typedef struct host_copy {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  wb_snapshot *snapshot;
  uint64_t version;
  uint32_t dst[2][ELEMS + 1]; /* one element past each tensor, which must stay untouched */
  wb_copy_target targets[2];
} host_copy;

static void setup_copy(fx_broker *b, host_copy *t) {
  FX_OK(fx_attach(b, "publisher", &t->pc));
  FX_OK(fx_attach(b, "reader", &t->rc));
  FX_OK(fx_create_topic(t->pc, "model", 2, 2, ELEMS, &t->pub));
  FX_OK(fx_publish(t->pub, 3, ELEMS, &t->version));
  FX_OK(wb_topic_open(t->rc, "model", &t->reader));
  FX_OK(wb_snapshot_acquire(t->reader, 0, 1000, &t->snapshot));
  memset(t->dst, 0xee, sizeof(t->dst));
  for (uint32_t i = 0; i < 2; ++i) {
    wb_copy_target target = WB_COPY_TARGET_INIT;
    target.dst = t->dst[i];
    target.dst_bytes = sizeof(t->dst[i]);
    t->targets[i] = target;
  }
  t->targets[0].name = "t0";
  t->targets[1].index = 1; /* "t1", by index */
}

static void teardown_copy(host_copy *t) {
  FX_OK(wb_snapshot_release(t->snapshot));
  FX_OK(wb_detach(t->rc));
  FX_OK(wb_detach(t->pc));
}

static void expect_untouched(const host_copy *t) {
  for (uint32_t i = 0; i < 2; ++i) {
    for (uint32_t e = 0; e <= ELEMS; ++e) {
      if (t->dst[i][e] != 0xeeeeeeeeu) fail_msg("dst[%u][%u] was written by a refused copy", i, e);
    }
  }
}

static void expect_message(const char *part) {
  if (strstr(wb_last_error(), part) == NULL) fail_msg("wb_last_error() lacks '%s': '%s'", part, wb_last_error());
}

static void host_tensors_are_copied_into_host_memory(void **state) {
  host_copy t;
  setup_copy(*state, &t);
  FX_OK(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL));
  for (uint32_t i = 0; i < 2; ++i) {
    int64_t bad = fx_check_u32(t.dst[i], ELEMS, t.version, i);
    if (bad >= 0) fail_msg("dst[%u] element %lld is not tensor t%u's", i, (long long)bad, i);
    if (t.dst[i][ELEMS] != 0xeeeeeeeeu) fail_msg("the copy of t%u wrote past its %d elements", i, ELEMS);
  }
  teardown_copy(&t);
}

static void a_target_on_a_gpu_is_no_cuda_and_nothing_is_copied(void **state) {
  host_copy t;
  setup_copy(*state, &t);
  t.targets[1].device = 0;
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_NO_CUDA);
  expect_message("targets[1].device is 0");
  expect_message(NO_CUDA_REASON);
  expect_untouched(&t);
  teardown_copy(&t);
}

static void bad_targets_are_refused_as_with_cuda(void **state) {
  host_copy t;
  setup_copy(*state, &t);
  t.targets[1].dst_bytes = ELEMS * 4 - 1;
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_SIZE);
  expect_message("targets[1]: tensor 't1' has 1024 bytes, but dst_bytes is 1023");
  t.targets[1].dst_bytes = sizeof(t.dst[1]);
  t.targets[0].device = -2;
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_INVAL);
  expect_message("targets[0].device is -2");
  t.targets[0].device = -1;
  t.targets[0].dst = NULL;
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_INVAL);
  expect_message("targets[0] ('t0'): dst is NULL");
  t.targets[0].dst = t.dst[0];
  t.targets[1].name = "nope";
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 2, NULL), WB_E_NOT_FOUND);
  expect_message("targets[1]");
  expect_untouched(&t);
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, NULL, 1, NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_copy_into(t.snapshot, t.targets, 0, NULL), WB_E_INVAL);
  teardown_copy(&t);
}

int main(void) {
  setenv("WEIGHTBUS_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(host_tensors_are_copied_into_host_memory, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_target_on_a_gpu_is_no_cuda_and_nothing_is_copied, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_targets_are_refused_as_with_cuda, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
