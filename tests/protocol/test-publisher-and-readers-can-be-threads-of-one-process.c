/* A publisher thread and four reader threads of one process, each reader checking every version it leases
 * (tensors and metadata) while versions flow. Processes hide their shared-memory accesses from each other's
 * ThreadSanitizer; threads of one process do not, so that the TSan build checks the lease and version-record
 * protocol itself here. */
#include <pthread.h>

#include "fixture.h"

#define VERSIONS 2000
#define TENSORS 3
#define ELEMS 256
#define READERS 4

typedef struct publisher_args {
  wb_topic *topic;
  int failures;
} publisher_args;

typedef struct reader_args {
  wb_topic *topic;
  int failures;
  uint32_t checked;
} reader_args;

static void *publish_versions(void *arg) {
  publisher_args *a = arg;
  for (int v = 2; v <= VERSIONS; ++v) {
    if (fx_publish(a->topic, v % 3 == 0 ? 1u : (1u << TENSORS) - 1, ELEMS, NULL) != WB_OK) a->failures++;
  }
  return NULL;
}

/* fx_publish's metadata is the version itself, 8 bytes. */
static int check_metadata(wb_snapshot *s, uint64_t v) {
  const void *data;
  uint32_t size;
  uint64_t stored;
  if (wb_snapshot_metadata(s, &data, &size, NULL) != WB_OK || size != sizeof(stored)) return -1;
  memcpy(&stored, data, sizeof(stored));
  return stored == v ? 0 : -1;
}

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
    if (check_metadata(s, seen) != 0) a->failures++;
    for (uint32_t i = 0; i < TENSORS; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      char name[8];
      snprintf(name, sizeof(name), "t%u", i);
      if (wb_snapshot_tensor(s, name, &info) != WB_OK || fx_check_u32(info.data, ELEMS, info.version, i) >= 0) {
        a->failures++;
      }
    }
    a->checked++;
    wb_snapshot_release(s);
  }
  return NULL;
}

static void threads_publish_and_read_every_version_whole(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *reader;
  FX_OK(fx_attach(*state, "publisher", &pc));
  FX_OK(fx_attach(*state, "readers", &rc));
  FX_OK(fx_create_topic(pc, "threads", 2, TENSORS, ELEMS, &pub));
  FX_OK(fx_publish(pub, (1u << TENSORS) - 1, ELEMS, NULL));
  FX_OK(wb_topic_open(rc, "threads", &reader));
  pthread_t readers[READERS], publisher;
  reader_args args[READERS];
  for (int i = 0; i < READERS; ++i) {
    args[i] = (reader_args){reader, 0, 0};
    assert_int_equal(pthread_create(&readers[i], NULL, read_versions, &args[i]), 0);
  }
  publisher_args pa = {pub, 0};
  assert_int_equal(pthread_create(&publisher, NULL, publish_versions, &pa), 0);
  pthread_join(publisher, NULL);
  assert_int_equal(pa.failures, 0);
  for (int i = 0; i < READERS; ++i) {
    pthread_join(readers[i], NULL);
    assert_int_equal(args[i].failures, 0);
    assert_true(args[i].checked > 0);
  }
  FX_OK(wb_topic_close(reader));
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(threads_publish_and_read_every_version_whole, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
