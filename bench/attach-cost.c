/* What a reader pays to see a topic of N host tensors, and what the registry costs at scale:
 *
 *   attach-cost [--max N]     prints CSV: tensors,cold_ms,warm_ms,lookup_ns,segment_bytes
 *
 * For N = 100, 1,000, 10,000 and 100,000 (up to --max), a publisher allocates N tensors (u8[64] each) and
 * publishes a version. A fresh reader process then times "cold": wb_attach + wb_topic_open +
 * wb_snapshot_acquire + a lookup of every tensor by name (which maps their allocations) + release; then
 * "warm": the median of 20 rounds of acquire + N lookups + release. lookup_ns is the warm time per tensor;
 * segment_bytes the size of the broker's segment, sized for N tensors. */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "fixture.h"

#define BATCH 4096u

typedef struct shared {
  double cold_ms, warm_ms;
} shared;

typedef struct job {
  const fx_broker *broker;
  uint32_t tensors;
  shared *out;
} job;

static void tensor_name_of(char *buf, size_t size, uint32_t i) { snprintf(buf, size, "layers.%u.weight", i); }

static int populate(wb_client *c, uint32_t n) {
  wb_topic *t;
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  int rc = wb_topic_create(c, "model", &o, &t);
  char (*names)[32] = malloc(BATCH * sizeof(*names));
  wb_tensor_spec *specs = malloc(BATCH * sizeof(*specs));
  for (uint32_t first = 0; rc == WB_OK && first < n; first += BATCH) {
    uint32_t count = n - first < BATCH ? n - first : BATCH;
    for (uint32_t i = 0; i < count; ++i) {
      wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
      tensor_name_of(names[i], sizeof(names[i]), first + i);
      s.name = names[i];
      s.dtype = WB_DTYPE_U8;
      s.ndim = 1;
      s.shape[0] = 64;
      specs[i] = s;
    }
    rc = wb_tensor_alloc(t, specs, count);
  }
  free(names);
  free(specs);
  wb_update *u;
  if (rc == WB_OK) rc = wb_update_begin(t, 1000, &u);
  if (rc == WB_OK) rc = wb_update_publish(u, NULL, 0, NULL);
  return rc;
}

static int resolve_all(wb_topic *t, uint32_t n) {
  wb_snapshot *s;
  int rc = wb_snapshot_acquire(t, 0, 1000, &s);
  for (uint32_t i = 0; rc == WB_OK && i < n; ++i) {
    char name[32];
    tensor_name_of(name, sizeof(name), i);
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    rc = wb_snapshot_tensor(s, name, &info);
  }
  if (rc == WB_OK) rc = wb_snapshot_release(s);
  return rc;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int reader_main(void *arg) {
  job *j = arg;
  wb_client *c;
  wb_topic *t;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHILD_OK(fx_attach(j->broker, "attach-cost", &c));
  CHILD_OK(wb_topic_open(c, "model", &t));
  CHILD_OK(resolve_all(t, j->tensors));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  j->out->cold_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  double warm[20];
  for (int r = 0; r < 20; ++r) {
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHILD_OK(resolve_all(t, j->tensors));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    warm[r] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  }
  qsort(warm, 20, sizeof(warm[0]), compare);
  j->out->warm_ms = warm[10];
  wb_detach(c);
  return 0;
}

static long long segment_bytes(const fx_broker *b) {
  char path[160];
  snprintf(path, sizeof(path), "/dev/shm/weightbus-%u-%s", (unsigned)getuid(), b->name);
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int measure(uint32_t n) {
  fx_broker_opts opts = {0};
  opts.max_tensors = n + 64;
  opts.max_tensors_per_client = n + 64;  /* the default, half of max_tensors, is below what one publisher adds */
  fx_broker b;
  if (fx_broker_start(&b, &opts) != 0) return -1;
  wb_client *c;
  shared *out = fx_shared_alloc(sizeof(shared));
  job j = {&b, n, out};
  int rc = fx_attach(&b, "attach-cost-publisher", &c);
  if (rc == WB_OK) rc = populate(c, n);
  if (rc == WB_OK) rc = fx_wait_child(fx_spawn(reader_main, &j), 600000);
  if (rc == 0) {
    printf("%u,%.3f,%.3f,%.1f,%lld\n", n, out->cold_ms, out->warm_ms, out->warm_ms * 1e6 / n, segment_bytes(&b));
    fflush(stdout);
  } else {
    fprintf(stderr, "attach-cost: %u tensors failed: %s\n", n, wb_last_error());
  }
  wb_detach(c);
  fx_shared_free(out, sizeof(shared));
  fx_broker_stop(&b);
  return rc;
}

int main(int argc, char **argv) {
  uint32_t max = argc > 2 && strcmp(argv[1], "--max") == 0 ? (uint32_t)atoi(argv[2]) : 100000;
  printf("tensors,cold_ms,warm_ms,lookup_ns,segment_bytes\n");
  for (uint32_t n = 100; n <= max; n *= 10) {
    if (measure(n) != 0) return 1;
  }
  return 0;
}
