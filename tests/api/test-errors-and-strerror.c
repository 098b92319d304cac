/* Every error code has its own non-NULL message naming it; wb_last_error() is per thread, empty before any
 * failure and non-empty after one; every function refuses NULL handles and NULL out-parameters with
 * WB_E_INVAL (and a message) instead of crashing. */
#include <pthread.h>

#include "fixture.h"

/* Every code of the header's one list (WB_ERROR_MAP), with its name as written there. */
#define CODE_ROW(name, value, text) {name, #name},
static const struct {
  int code;
  const char *name;
} codes[] = {WB_ERROR_MAP(CODE_ROW)};
#undef CODE_ROW
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static void strerror_names_every_code_distinctly(void **state) {
  (void)state;
  for (size_t i = 0; i < NCODES; ++i) {
    const char *s = wb_strerror(codes[i].code);
    assert_non_null(s);
    if (strstr(s, codes[i].name) == NULL) fail_msg("wb_strerror(%d) = \"%s\" does not name %s", codes[i].code, s, codes[i].name);
    /* The names overlap as prefixes (WB_E_S...), so compare whole strings too. */
    for (size_t j = 0; j < i; ++j) assert_string_not_equal(s, wb_strerror(codes[j].code));
  }
  const int unknown[] = {1, -25, -1000, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); ++i) {
    const char *s = wb_strerror(unknown[i]);
    assert_non_null(s);
    assert_true(s[0] != '\0');
  }
}

static void *fresh_thread(void *arg) {
  const char **seen = arg;
  /* Copies: the pointer is only valid until this thread's next call. */
  static char before[512], after[512];
  snprintf(before, sizeof(before), "%s", wb_last_error());
  int rc = wb_detach(NULL);
  snprintf(after, sizeof(after), "%s", rc == WB_E_INVAL ? wb_last_error() : "");
  seen[0] = before;
  seen[1] = after;
  return NULL;
}

static void last_error_is_per_thread(void **state) {
  (void)state;
  FX_EXPECT(wb_topic_close(NULL), WB_E_INVAL);
  char mine[512];
  snprintf(mine, sizeof(mine), "%s", wb_last_error());
  assert_true(mine[0] != '\0');

  const char *seen[2] = {NULL, NULL};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, fresh_thread, seen), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_non_null(seen[0]);
  assert_string_equal(seen[0], ""); /* another thread's failure is not visible here */
  assert_true(seen[1][0] != '\0');
  assert_string_equal(wb_last_error(), mine); /* and the other thread's failure did not overwrite ours */
}

static void null_handles_are_inval(void **state) {
  (void)state;
  uint32_t u32;
  uint64_t u64;
  int fd;
  const void *data;
  wb_client *c;
  wb_topic *t;
  wb_update *u;
  wb_snapshot *s;
  wb_topic_info ti = WB_TOPIC_INFO_INIT;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  wb_client_info ci = WB_CLIENT_INFO_INIT;
  wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
  wb_view_spec view = WB_VIEW_SPEC_INIT;
  wb_topic_options to = WB_TOPIC_OPTIONS_INIT;
  spec.name = "x";
  spec.dtype = WB_DTYPE_U8;
  view.name = "v";
  view.parent = "x";
  view.dtype = WB_DTYPE_U8;
  (void)c;
  FX_EXPECT(wb_attach(NULL, NULL), WB_E_INVAL);
  FX_EXPECT(wb_detach(NULL), WB_E_INVAL);
  FX_EXPECT(wb_client_id(NULL, &u32), WB_E_INVAL);
  FX_EXPECT(wb_topic_create(NULL, "x", &to, &t), WB_E_INVAL);
  FX_EXPECT(wb_topic_open(NULL, "x", &t), WB_E_INVAL);
  FX_EXPECT(wb_topic_close(NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_get_info(NULL, &ti), WB_E_INVAL);
  FX_EXPECT(wb_list_topics(NULL, &ti, 1, &u32), WB_E_INVAL);
  FX_EXPECT(wb_tensor_alloc(NULL, &spec, 1), WB_E_INVAL);
  FX_EXPECT(wb_tensor_view(NULL, &view), WB_E_INVAL);
  FX_EXPECT(wb_topic_tensor_count(NULL, &u32), WB_E_INVAL);
  FX_EXPECT(wb_topic_tensor(NULL, 0, &info), WB_E_INVAL);
  FX_EXPECT(wb_update_begin(NULL, 0, &u), WB_E_INVAL);
  FX_EXPECT(wb_update_version(NULL, &u64), WB_E_INVAL);
  FX_EXPECT(wb_update_tensor(NULL, "x", &info), WB_E_INVAL);
  FX_EXPECT(wb_update_tensor_at(NULL, 0, &info), WB_E_INVAL);
  FX_EXPECT(wb_update_publish(NULL, NULL, 0, &u64), WB_E_INVAL);
  FX_EXPECT(wb_update_abort(NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_latest(NULL, &u64), WB_E_INVAL);
  FX_EXPECT(wb_topic_wait(NULL, 0, 0, &u64), WB_E_INVAL);
  FX_EXPECT(wb_topic_notify_fd(NULL, &fd), WB_E_INVAL);
  FX_EXPECT(wb_topic_notify_ack(NULL, &u64), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_acquire(NULL, 0, 0, &s), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_release(NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_version(NULL, &u64), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_metadata(NULL, &data, &u32, &u64), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensor(NULL, "x", &info), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensor_at(NULL, 0, &info), WB_E_INVAL);
  FX_EXPECT(wb_list_clients(NULL, &ci, 1, &u32), WB_E_INVAL);
}

static void null_out_parameters_are_inval(void **state) {
  fx_broker *b = *state;
  wb_client *c, *rd;
  wb_topic *pt, *rt, *unused;
  wb_update *u;
  wb_snapshot *s;
  uint32_t u32;
  uint64_t u64, latest;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  wb_topic_options to = WB_TOPIC_OPTIONS_INIT;
  wb_attach_options ao = WB_ATTACH_OPTIONS_INIT;
  ao.socket_path = b->socket_path;

  FX_EXPECT(wb_attach(&ao, NULL), WB_E_INVAL);
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(fx_attach(b, NULL, &rd));
  FX_OK(fx_create_topic(c, "model", 2, 1, 16, &pt));
  FX_OK(fx_publish(pt, 1, 16, NULL));
  FX_OK(wb_topic_open(rd, "model", &rt));
  FX_OK(wb_snapshot_acquire(rt, 0, 1000, &s));
  FX_OK(wb_update_begin(pt, 1000, &u));

  FX_EXPECT(wb_client_id(c, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_create(c, "other", &to, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_create(c, NULL, &to, &unused), WB_E_INVAL);
  FX_EXPECT(wb_topic_open(rd, "model", NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_open(rd, NULL, &unused), WB_E_INVAL);
  FX_EXPECT(wb_topic_get_info(rt, NULL), WB_E_INVAL);
  FX_EXPECT(wb_list_topics(c, NULL, 1, &u32), WB_E_INVAL); /* out NULL only with capacity 0 */
  FX_EXPECT(wb_list_topics(c, NULL, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_tensor_alloc(pt, NULL, 1), WB_E_INVAL);
  FX_EXPECT(wb_tensor_view(pt, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_tensor_count(rt, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_tensor(rt, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_update_begin(pt, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_update_version(u, NULL), WB_E_INVAL);
  FX_EXPECT(wb_update_tensor(u, NULL, &info), WB_E_INVAL);
  FX_EXPECT(wb_update_tensor(u, "t0", NULL), WB_E_INVAL);
  FX_EXPECT(wb_update_tensor_at(u, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_latest(rt, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_wait(rt, 0, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_notify_fd(rt, NULL), WB_E_INVAL);
  FX_EXPECT(wb_topic_notify_ack(rt, NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_acquire(rt, 0, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_version(s, NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensor(s, NULL, &info), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensor(s, "t0", NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensor_at(s, 0, NULL), WB_E_INVAL);
  FX_EXPECT(wb_list_clients(c, NULL, 1, &u32), WB_E_INVAL);
  FX_EXPECT(wb_list_clients(c, NULL, 0, NULL), WB_E_INVAL);
  /* metadata NULL with a size: refused, nothing published, the update stays open until aborted. */
  FX_EXPECT(wb_update_publish(u, NULL, 8, &u64), WB_E_INVAL);
  FX_OK(wb_topic_latest(rt, &latest));
  assert_int_equal(latest, 1);
  FX_OK(wb_update_abort(u));
  FX_OK(wb_update_begin(pt, 1000, &u));
  FX_OK(wb_update_version(u, &u64));
  assert_int_equal(u64, 2);
  FX_OK(wb_update_abort(u));
  FX_OK(wb_snapshot_release(s));
  FX_OK(wb_detach(rd));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(strerror_names_every_code_distinctly),
      cmocka_unit_test(last_error_is_per_thread),
      cmocka_unit_test(null_handles_are_inval),
      cmocka_unit_test_setup_teardown(null_out_parameters_are_inval, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
