/* The library maps only shared memory of its own uid with mode 0600, as the broker makes it: the segment it
 * gets on attach and each host allocation it gets for a tensor are checked (fstat) before they are mapped, and
 * anything else is WB_E_PERM naming what was wrong. Here a broker of ours hands over objects changed under it. */
#include <sys/stat.h>

#include "fixture.h"
#include "security.h"

static void a_segment_opened_to_others_is_not_mapped(void **state) {
  fx_broker *b = *state;
  char path[256];
  wb_client *c;
  sec_shm_path(path, geteuid(), b->name, "");
  assert_int_equal(chmod(path, 0644), 0);
  FX_EXPECT(fx_attach(b, NULL, &c), WB_E_PERM);
  sec_expect_text(wb_last_error(), "the segment the broker sent has mode 0644, not 0600", NULL);
  assert_int_equal(chmod(path, 0400), 0);
  FX_EXPECT(fx_attach(b, NULL, &c), WB_E_PERM);
  sec_expect_text(wb_last_error(), "has mode 0400, not 0600", NULL);
  assert_int_equal(chmod(path, 0600), 0);
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(wb_detach(c));
}

static void a_segment_of_another_uid_is_not_mapped(void **state) {
  fx_broker *b = *state;
  if (!sec_can_be_nobody()) skip();
  char path[256];
  wb_client *c;
  sec_shm_path(path, geteuid(), b->name, "");
  assert_int_equal(chown(path, SEC_NOBODY, SEC_NOBODY), 0);
  FX_EXPECT(fx_attach(b, NULL, &c), WB_E_PERM);
  sec_expect_text(wb_last_error(), "the segment the broker sent is owned by uid 65534 (mode 0600), not by uid 0",
                  NULL);
  assert_int_equal(chown(path, 0, 0), 0);
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(wb_detach(c));
}

/* A reader maps a tensor's allocation when it first reads it: that one changed, its read is refused. */
static void an_allocation_not_0600_or_not_ours_is_not_mapped(void **state) {
  fx_broker *b = *state;
  char path[256];
  wb_client *pub, *reader;
  wb_topic *t, *rt;
  wb_snapshot *s;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(fx_attach(b, "publisher", &pub));
  FX_OK(fx_create_topic(pub, "policy", 1, 1, 16, &t));
  FX_OK(fx_publish(t, 1, 16, NULL));
  sec_shm_path(path, geteuid(), b->name, ".a0");
  assert_int_equal(chmod(path, 0640), 0);
  FX_OK(fx_attach(b, "reader", &reader));
  FX_OK(wb_topic_open(reader, "policy", &rt));
  FX_OK(wb_snapshot_acquire(rt, 0, 1000, &s));
  FX_EXPECT(wb_snapshot_tensor(s, "t0", &info), WB_E_PERM);
  sec_expect_text(wb_last_error(), "allocation 0 the broker sent has mode 0640, not 0600", NULL);
  if (sec_can_be_nobody()) {
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(chown(path, SEC_NOBODY, SEC_NOBODY), 0);
    FX_EXPECT(wb_snapshot_tensor(s, "t0", &info), WB_E_PERM);
    sec_expect_text(wb_last_error(), "allocation 0 the broker sent is owned by uid 65534", NULL);
    assert_int_equal(chown(path, 0, 0), 0);
  }
  assert_int_equal(chmod(path, 0600), 0);
  FX_OK(wb_snapshot_tensor(s, "t0", &info));
  assert_int_equal(fx_check_tensor(s, 0, 16, info.version), 0);
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_topic_close(rt));
  FX_OK(wb_detach(reader));
  FX_OK(wb_topic_close(t));
  FX_OK(wb_detach(pub));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_segment_opened_to_others_is_not_mapped, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_segment_of_another_uid_is_not_mapped, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(an_allocation_not_0600_or_not_ours_is_not_mapped, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
