/* Compares a topic in two brokers, as the relay tests' judge:
 *   relay-compare SOCKET_A SOCKET_B TOPIC VERSION TIMEOUT_MS
 * waits until B's latest is VERSION (0: whatever A's latest is), leases that version in both and checks that
 * they have the same metadata and the same tensors and views: names, dtypes, shapes, strides and every byte. Exit 0 when equal, 1 with the first difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weightbus/weightbus.h"

static int check(int rc, const char *what) {
  if (rc != WB_OK) fprintf(stderr, "relay-compare: %s: %s: %s\n", what, wb_strerror(rc), wb_last_error());
  return rc != WB_OK;
}

static wb_client *g_clients[2];

static int open_topic(int k, const char *socket, const char *name, wb_topic **out) {
  wb_attach_options ao = WB_ATTACH_OPTIONS_INIT;
  ao.socket_path = socket;
  return check(wb_attach(&ao, &g_clients[k]), socket) || check(wb_topic_open(g_clients[k], name, out), "wb_topic_open");
}

/* Detaching releases the snapshots and closes the topics too. */
static int finish(int status) {
  for (int k = 0; k < 2; ++k)
    if (g_clients[k] != NULL) wb_detach(g_clients[k]);
  return status;
}

static int differ(const char *what, uint64_t a, uint64_t b) {
  if (a == b) return 0;
  fprintf(stderr, "relay-compare: %s: %llu vs %llu\n", what, (unsigned long long)a, (unsigned long long)b);
  return 1;
}

/* Tensor i of A against the tensor of the same name in B (the sink may index them in another order). B's
 * tensor was written by the same version as A's or, when the relay skipped versions, by a later one. */
static int compare_tensor(wb_snapshot *a, wb_snapshot *b, uint32_t i) {
  wb_tensor_info x = WB_TENSOR_INFO_INIT, y = WB_TENSOR_INFO_INIT;
  if (check(wb_snapshot_tensor_at(a, i, &x), "a tensor of A") || check(wb_snapshot_tensor(b, x.name, &y), x.name)) return 1;
  int bad = differ(x.name, (uint64_t)x.dtype, (uint64_t)y.dtype) || differ(x.name, x.ndim, y.ndim) ||
            differ(x.name, x.nbytes, y.nbytes) || differ(x.name, y.version < x.version, 0) ||
            differ(x.name, x.is_view, y.is_view) ||
            differ(x.name, memcmp(x.shape, y.shape, sizeof(x.shape)) != 0, 0) ||
            differ(x.name, memcmp(x.strides, y.strides, sizeof(x.strides)) != 0, 0);
  if (bad) return 1;
  if (memcmp(x.data, y.data, x.nbytes) != 0) {
    fprintf(stderr, "relay-compare: the bytes of '%s' differ\n", x.name);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: relay-compare SOCKET_A SOCKET_B TOPIC VERSION TIMEOUT_MS\n");
    return 2;
  }
  wb_topic *a, *b;
  uint64_t want = strtoull(argv[4], NULL, 10), got = 0;
  int64_t timeout = strtoll(argv[5], NULL, 10);
  if (open_topic(0, argv[1], argv[3], &a) || open_topic(1, argv[2], argv[3], &b)) return finish(1);
  if (want == 0 && check(wb_topic_latest(a, &want), "wb_topic_latest")) return finish(1);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (check(wb_topic_latest(b, &got), "wb_topic_latest") ) return finish(1);
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (got >= want || waited > timeout) break;
    wb_topic_wait(b, got, 100, &got);
  }
  if (differ("B's latest against the version wanted", got, want)) return finish(1);
  wb_snapshot *sa, *sb;
  if (check(wb_snapshot_acquire(a, want, 1000, &sa), "leasing in A") || check(wb_snapshot_acquire(b, want, 1000, &sb), "leasing in B")) return finish(1);
  const void *ma, *mb;
  uint32_t na, nb, ca, cb;
  if (check(wb_snapshot_metadata(sa, &ma, &na, NULL), "metadata") || check(wb_snapshot_metadata(sb, &mb, &nb, NULL), "metadata")) return finish(1);
  if (differ("metadata size", na, nb) || differ("metadata bytes", memcmp(ma, mb, na) != 0, 0)) return finish(1);
  if (check(wb_topic_tensor_count(a, &ca), "count") || check(wb_topic_tensor_count(b, &cb), "count") ||
      differ("tensor count", ca, cb)) {
    return finish(1);
  }
  for (uint32_t i = 0; i < ca; ++i)
    if (compare_tensor(sa, sb, i)) return finish(1);
  printf("relay-compare: version %llu equal (%u tensors)\n", (unsigned long long)want, ca);
  return finish(0);
}
