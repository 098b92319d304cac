/* kill -9 of a reader that holds a lease on an R = 1 topic: the broker reclaims the lease (and the client
 * slot), so the publisher's waiting wb_update_begin proceeds instead of timing out. */
#include <signal.h>

#include "fixture.h"

#define ELEMS 512

typedef struct shared {
  uint32_t published; /* parent: version 1 is out */
  uint32_t leased;    /* child: it holds its lease */
} shared;

typedef struct child_arg {
  fx_broker *broker;
  shared *sh;
} child_arg;

static int reader_that_never_releases(void *p) {
  child_arg *a = p;
  wb_client *c;
  wb_topic *t;
  wb_snapshot *s;
  CHILD_CHECK(fx_wait_word(&a->sh->published, 1, 10000) == 0);
  CHILD_OK(fx_attach(a->broker, "doomed-reader", &c));
  CHILD_OK(wb_topic_open(c, "model", &t));
  CHILD_OK(wb_snapshot_acquire(t, 0, 5000, &s));
  fx_set_word(&a->sh->leased, 1);
  for (;;) pause();
}

static void killed_reader_releases_its_lease(void **state) {
  fx_broker *b = *state;
  shared *sh = fx_shared_alloc(sizeof(shared));
  assert_non_null(sh);
  child_arg arg = {b, sh};
  /* Fork before this process attaches: the child starts from a clean library state. */
  pid_t child = fx_spawn(reader_that_never_releases, &arg);
  assert_true(child > 0);

  wb_client *c;
  wb_topic *pub;
  FX_OK(fx_attach(b, "publisher", &c));
  FX_OK(fx_create_topic(c, "model", 1, 1, ELEMS, &pub));
  FX_OK(fx_publish(pub, 1, ELEMS, NULL));
  fx_set_word(&sh->published, 1);
  if (fx_wait_word(&sh->leased, 1, 10000) != 0) {
    fx_kill9(child);
    fail_msg("the reader child did not take its lease (see its stderr)");
  }

  wb_update *u;
  FX_EXPECT(wb_update_begin(pub, 100, &u), WB_E_TIMEOUT); /* the lease is real */

  fx_kill9(child);
  int64_t t0 = fx_now_ms();
  FX_OK(wb_update_begin(pub, 5000, &u)); /* reclaimed, not timed out */
  int64_t elapsed = fx_now_ms() - t0;
  if (elapsed > 2000) fail_msg("begin took %lld ms after the reader died", (long long)elapsed);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_tensor(u, "t0", &info));
  fx_fill_u32(info.data, ELEMS, 2, 0);
  uint64_t v = 0;
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 2);

  /* The dead client's slot is gone from the table too. */
  uint32_t count = 0;
  for (int64_t deadline = fx_now_ms() + 2000; fx_now_ms() < deadline; fx_sleep_ms(10)) {
    FX_OK(wb_list_clients(c, NULL, 0, &count));
    if (count == 1) break;
  }
  assert_int_equal(count, 1);
  FX_OK(wb_detach(c));
  fx_shared_free(sh, sizeof(shared));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(killed_reader_releases_its_lease, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
