/* One reader process, one wb_client and one topic handle, eight threads acquiring, checking and releasing
 * versions concurrently while another process publishes: the library is thread-safe for readers. */
#include <pthread.h>

#include "fixture.h"

#define VERSIONS 2000
#define TENSORS 3
#define ELEMS 1024
#define THREADS 8

typedef struct shared_state {
  uint32_t topic_ready;
  uint32_t readers_checked; /* threads that have checked version 1: versions 2.. flow while they read, not before */
} shared_state;

typedef struct publisher_args {
  fx_broker *broker;
  shared_state *shared;
} publisher_args;

typedef struct reader_args {
  wb_topic *topic;
  shared_state *shared;
  int failures;
  uint32_t checked;
} reader_args;

static int publish_versions(void *arg) {
  publisher_args *a = arg;
  wb_client *c;
  wb_topic *t;
  CHILD_OK(fx_attach(a->broker, "publisher", &c));
  CHILD_OK(fx_create_topic(c, "threads", 2, TENSORS, ELEMS, &t));
  CHILD_OK(fx_publish(t, (1u << TENSORS) - 1, ELEMS, NULL));
  fx_set_word(&a->shared->topic_ready, 1);
  CHILD_CHECK(fx_wait_word(&a->shared->readers_checked, THREADS, 10000) == 0);
  for (int v = 2; v <= VERSIONS; ++v) {
    CHILD_OK(fx_publish(t, v % 5 == 0 ? 1u : (1u << TENSORS) - 1, ELEMS, NULL));
  }
  CHILD_OK(wb_detach(c));
  return 0;
}

/* Each tensor holds the pattern of the version that last wrote it, which the snapshot reports. */
static void *read_versions(void *arg) {
  reader_args *a = arg;
  uint64_t seen = 0;
  while (seen < VERSIONS) {
    uint64_t v;
    wb_snapshot *s;
    if (wb_topic_wait(a->topic, seen, 10000, &v) != WB_OK || wb_snapshot_acquire(a->topic, 0, 10000, &s) != WB_OK) {
      a->failures++;
      return NULL;
    }
    wb_snapshot_version(s, &seen);
    for (uint32_t i = 0; i < TENSORS; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      char name[8];
      snprintf(name, sizeof(name), "t%u", i);
      if (wb_snapshot_tensor(s, name, &info) != WB_OK || fx_check_u32(info.data, ELEMS, info.version, i) >= 0 ||
          info.version > seen) {
        a->failures++;
      }
    }
    if (++a->checked == 1) __atomic_fetch_add(&a->shared->readers_checked, 1, __ATOMIC_RELEASE);
    wb_snapshot_release(s);
  }
  return NULL;
}

static void eight_threads_read_every_version_whole(void **state) {
  fx_broker *b = *state;
  shared_state *shared = fx_shared_alloc(sizeof(*shared));
  publisher_args pa = {b, shared};
  pid_t publisher = fx_spawn(publish_versions, &pa);
  assert_int_equal(fx_wait_word(&shared->topic_ready, 1, 10000), 0);
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, "threads", &c));
  FX_OK(wb_topic_open(c, "threads", &t));
  pthread_t threads[THREADS];
  reader_args args[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    args[i] = (reader_args){t, shared, 0, 0};
    assert_int_equal(pthread_create(&threads[i], NULL, read_versions, &args[i]), 0);
  }
  uint32_t checked = 0;
  for (int i = 0; i < THREADS; ++i) {
    pthread_join(threads[i], NULL);
    assert_int_equal(args[i].failures, 0);
    checked += args[i].checked;
  }
  assert_int_equal(fx_wait_child(publisher, 60000), 0);
  assert_true(checked > THREADS);
  FX_OK(wb_topic_close(t));
  FX_OK(wb_detach(c));
  fx_shared_free(shared, sizeof(*shared));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(eight_threads_read_every_version_whole, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
