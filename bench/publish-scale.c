/* Publishes per second while R readers read every version they can:
 *
 *   publish-scale [--seconds S]     prints CSV: readers,publishes_per_s,reads_per_s_per_reader,torn
 *
 * For 1, 4 and 16 reader processes: one publisher writes a 64 KiB tensor and publishes as fast as it can for
 * S seconds (default 2) on an R = 3 topic; each reader loops wb_topic_wait, acquire of the latest, a check of
 * every element, release. Readers report the versions they read and any torn one. */
#include <stdlib.h>

#include "fixture.h"

#define ELEMS (64 * 1024 / 4)

typedef struct shared {
  uint32_t stop;
  uint32_t ready;
  uint64_t reads;
  uint32_t torn;
} shared;

typedef struct job {
  const fx_broker *broker;
  shared *sh;
} job;

static int reader_main(void *arg) {
  job *j = arg;
  wb_client *c;
  wb_topic *t;
  CHILD_OK(fx_attach(j->broker, "scale-reader", &c));
  CHILD_OK(wb_topic_open(c, "scale", &t));
  __atomic_add_fetch(&j->sh->ready, 1, __ATOMIC_SEQ_CST);
  uint64_t seen = 0;
  while (!__atomic_load_n(&j->sh->stop, __ATOMIC_SEQ_CST)) {
    if (wb_topic_wait(t, seen, 100, &seen) != WB_OK) continue;
    wb_snapshot *s;
    if (wb_snapshot_acquire(t, 0, 100, &s) != WB_OK) continue;
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    if (wb_snapshot_tensor(s, "t0", &info) == WB_OK && fx_check_u32(info.data, ELEMS, info.version, 0) >= 0) {
      __atomic_add_fetch(&j->sh->torn, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_add_fetch(&j->sh->reads, 1, __ATOMIC_SEQ_CST);
    wb_snapshot_release(s);
  }
  wb_detach(c);
  return 0;
}

static int measure(uint32_t readers, double seconds) {
  fx_broker b;
  if (fx_broker_start(&b, NULL) != 0) return -1;
  shared *sh = fx_shared_alloc(sizeof(shared));
  job j = {&b, sh};
  wb_client *c;
  wb_topic *t;
  int rc = fx_attach(&b, "scale-publisher", &c);
  if (rc == WB_OK) rc = fx_create_topic(c, "scale", 3, 1, ELEMS, &t);
  pid_t pids[16];
  for (uint32_t r = 0; rc == WB_OK && r < readers; ++r) pids[r] = fx_spawn(reader_main, &j);
  if (rc == WB_OK) rc = fx_wait_word(&sh->ready, readers, 10000);
  uint64_t published = 0;
  int64_t start = fx_now_ms(), end = start + (int64_t)(seconds * 1000);
  while (rc == WB_OK && fx_now_ms() < end) {
    rc = fx_publish(t, 1, ELEMS, NULL);
    ++published;
  }
  double elapsed = (double)(fx_now_ms() - start) / 1000;
  __atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
  for (uint32_t r = 0; r < readers; ++r) {
    if (fx_wait_child(pids[r], 10000) != 0) rc = -1;
  }
  if (rc == 0) {
    printf("%u,%.0f,%.0f,%u\n", readers, (double)published / elapsed, (double)sh->reads / elapsed / readers, sh->torn);
    fflush(stdout);
  } else {
    fprintf(stderr, "publish-scale: %u readers failed: %s\n", readers, wb_last_error());
  }
  wb_detach(c);
  fx_shared_free(sh, sizeof(shared));
  fx_broker_stop(&b);
  return rc;
}

int main(int argc, char **argv) {
  double seconds = argc > 2 && strcmp(argv[1], "--seconds") == 0 ? atof(argv[2]) : 2.0;
  printf("readers,publishes_per_s,reads_per_s_per_reader,torn\n");
  const uint32_t counts[] = {1, 4, 16};
  for (size_t i = 0; i < 3; ++i) {
    if (measure(counts[i], seconds) != 0) return 1;
  }
  return 0;
}
