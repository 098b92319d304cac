/* wb_list_topics and wb_list_clients report what exists: counts beyond the capacity given, names, versions and
 * when the latest was published, publishers, leases and storage, and the client label truncated to 31 bytes; a
 * caller built with an older, shorter wb_topic_info gets the fields it has room for. */
#include <stddef.h>
#include <time.h>

#include "fixture.h"

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const wb_topic_info *find_topic(const wb_topic_info *list, uint32_t n, const char *name) {
  for (uint32_t i = 0; i < n; ++i)
    if (strcmp(list[i].name, name) == 0) return &list[i];
  return NULL;
}

static const wb_client_info *find_client(const wb_client_info *list, uint32_t n, uint32_t id) {
  for (uint32_t i = 0; i < n; ++i)
    if (list[i].id == id) return &list[i];
  return NULL;
}

static void topics_are_listed(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  wb_topic *a, *m, *z;
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(fx_create_topic(c, "alpha", 1, 2, 100, &a));
  FX_OK(fx_create_topic(c, "middle", 3, 1, 10, &m));
  FX_OK(fx_create_topic(c, "zeta", 2, 0, 0, &z));
  FX_OK(fx_publish(a, 3, 100, NULL));
  const uint64_t before_second = realtime_ns();
  FX_OK(fx_publish(a, 1, 100, NULL));
  const uint64_t after_second = realtime_ns();
  FX_OK(wb_topic_close(z));

  uint32_t count = 0;
  FX_OK(wb_list_topics(c, NULL, 0, &count));
  assert_int_equal(count, 3);

  wb_topic_info list[4];
  for (int i = 0; i < 4; ++i) {
    wb_topic_info init = WB_TOPIC_INFO_INIT;
    list[i] = init;
  }
  count = 0;
  FX_OK(wb_list_topics(c, list, 2, &count)); /* capacity below the count: the first two */
  assert_int_equal(count, 3);
  assert_true(list[0].name[0] != '\0' && list[1].name[0] != '\0');
  assert_true(list[2].name[0] == '\0'); /* untouched beyond capacity */

  FX_OK(wb_list_topics(c, list, 4, &count));
  assert_int_equal(count, 3);
  const wb_topic_info *ai = find_topic(list, 3, "alpha"), *mi = find_topic(list, 3, "middle"),
                      *zi = find_topic(list, 3, "zeta");
  assert_non_null(ai);
  assert_non_null(mi);
  assert_non_null(zi);
  assert_int_equal(ai->replicas, 1);
  assert_int_equal(ai->latest, 2);
  assert_int_equal(ai->tensor_count, 2);
  assert_int_equal(ai->publisher_pid, (uint32_t)getpid());
  assert_int_equal(ai->dirty, 0);
  assert_true(ai->bytes >= 2 * 100 * 4); /* R = 1 */
  assert_true(ai->published_ns >= before_second && ai->published_ns <= after_second); /* version 2's */
  assert_int_equal(mi->replicas, 3);
  assert_int_equal(mi->latest, 0);
  assert_true(mi->bytes >= 3 * 10 * 4); /* storage of all replicas */
  assert_int_equal(mi->published_ns, 0);  /* nothing published */
  assert_int_equal(zi->publisher_pid, 0); /* closed */
  assert_int_equal(zi->tensor_count, 0);

  /* The topic's own info agrees with the listing. */
  wb_topic_info own = WB_TOPIC_INFO_INIT;
  FX_OK(wb_topic_get_info(m, &own));
  assert_int_equal(own.bytes, mi->bytes);
  FX_OK(wb_topic_get_info(a, &own));
  assert_int_equal(own.published_ns, ai->published_ns);

  /* A caller of a header before published_ns: the fields it has room for, the rest of its memory untouched. */
  wb_topic_info older;
  memset(&older, 0xAB, sizeof older);
  older.struct_size = offsetof(wb_topic_info, published_ns);
  FX_OK(wb_topic_get_info(a, &older));
  assert_int_equal(older.latest, 2);
  assert_int_equal(older.ranks, 0);
  assert_int_equal(older.published_ns, 0xABABABABABABABABull);
  FX_OK(wb_detach(c));
}

static void clients_are_listed(void **state) {
  fx_broker *b = *state;
  wb_client *pub, *reader;
  wb_topic *pt, *rt;
  wb_snapshot *s1, *s2;
  uint32_t pub_id, reader_id;
  FX_OK(fx_attach(b, "the-publisher", &pub));
  FX_OK(fx_attach(b, "a-reader-with-a-name-longer-than-31-bytes", &reader));
  FX_OK(wb_client_id(pub, &pub_id));
  FX_OK(wb_client_id(reader, &reader_id));
  FX_OK(fx_create_topic(pub, "model", 3, 1, 8, &pt));
  FX_OK(fx_publish(pt, 1, 8, NULL));
  FX_OK(fx_publish(pt, 1, 8, NULL));
  FX_OK(wb_topic_open(reader, "model", &rt));
  FX_OK(wb_snapshot_acquire(rt, 1, 1000, &s1));
  FX_OK(wb_snapshot_acquire(rt, 2, 1000, &s2));

  uint32_t count = 0;
  FX_OK(wb_list_clients(reader, NULL, 0, &count));
  assert_int_equal(count, 2);
  wb_client_info list[3];
  for (int i = 0; i < 3; ++i) {
    wb_client_info init = WB_CLIENT_INFO_INIT;
    list[i] = init;
  }
  FX_OK(wb_list_clients(reader, list, 3, &count));
  assert_int_equal(count, 2);
  const wb_client_info *pi = find_client(list, 2, pub_id), *ri = find_client(list, 2, reader_id);
  assert_non_null(pi);
  assert_non_null(ri);
  assert_int_equal(pi->pid, (uint32_t)getpid());
  assert_string_equal(pi->name, "the-publisher");
  assert_int_equal(pi->topics_published, 1);
  assert_int_equal(pi->leases, 0);
  assert_string_equal(ri->name, "a-reader-with-a-name-longer-tha"); /* 31 bytes kept */
  assert_int_equal(ri->topics_published, 0);
  assert_int_equal(ri->leases, 2);

  FX_OK(wb_snapshot_release(s1));
  FX_OK(wb_list_clients(pub, list, 3, &count));
  ri = find_client(list, count, reader_id);
  assert_non_null(ri);
  assert_int_equal(ri->leases, 1);
  FX_OK(wb_snapshot_release(s2));
  FX_OK(wb_detach(reader));
  /* wb_detach returns once the broker has freed the slot. */
  FX_OK(wb_list_clients(pub, list, 3, &count));
  assert_int_equal(count, 1);
  assert_int_equal(list[0].id, pub_id);
  FX_OK(wb_detach(pub));
}

static void default_client_name_is_the_program(void **state) {
  fx_broker *b = *state;
  wb_client *c;
  uint32_t id, count;
  FX_OK(fx_attach(b, NULL, &c));
  FX_OK(wb_client_id(c, &id));
  wb_client_info list[1] = {WB_CLIENT_INFO_INIT};
  FX_OK(wb_list_clients(c, list, 1, &count));
  assert_int_equal(count, 1);
  /* The program is test-listing; at least its start must show (31 bytes are kept). */
  if (strncmp(list[0].name, "test-listing", 12) != 0) fail_msg("default client name is \"%s\"", list[0].name);
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(topics_are_listed, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(clients_are_listed, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(default_client_name_is_the_program, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
