/* The relay tests' trainer: publishes versions of a host topic into a broker.
 *   relay-publisher SOCKET TOPIC FIRST LAST INTERVAL_MS
 * creates TOPIC (R = 2) on first use with tensors of awkward sizes for the bucket plan (1 byte, 4 KiB, odd
 * sizes, 1 MiB) and a view, then publishes versions FIRST..LAST, INTERVAL_MS apart. Version v rewrites every
 * tensor when v is 1 or a multiple of 10, else tensor v % 6 only, with bytes that depend on (v, tensor,
 * offset); its metadata is "step=v". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weightbus/weightbus.h"

#define TENSORS 6
static const int64_t kElems[TENSORS] = {1, 1024, 333, 262144, 7777, 4096};
static const int32_t kDtypes[TENSORS] = {WB_DTYPE_U8, WB_DTYPE_F32, WB_DTYPE_BF16, WB_DTYPE_F32, WB_DTYPE_U8, WB_DTYPE_I64};

static int check(int rc, const char *what) {
  if (rc != WB_OK) fprintf(stderr, "relay-publisher: %s: %s: %s\n", what, wb_strerror(rc), wb_last_error());
  return rc != WB_OK;
}

static void fill(uint8_t *p, uint64_t n, uint64_t v, uint32_t t) {
  for (uint64_t i = 0; i < n; ++i) p[i] = (uint8_t)(v * 31 + t * 7 + i * 13 + (i >> 8));
}

static int create(wb_topic *topic) {
  wb_tensor_spec specs[TENSORS];
  char names[TENSORS][8];
  for (int t = 0; t < TENSORS; ++t) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    snprintf(names[t], sizeof(names[t]), "t%d", t);
    s.dtype = kDtypes[t];
    s.name = names[t];
    s.ndim = 1;
    s.shape[0] = kElems[t];
    specs[t] = s;
  }
  if (check(wb_tensor_alloc(topic, specs, TENSORS), "wb_tensor_alloc")) return 1;
  wb_view_spec view = WB_VIEW_SPEC_INIT; /* rows 1..2 of t3 seen as a 2 x 512 matrix */
  view.dtype = WB_DTYPE_F32;
  view.name = "t3.rows";
  view.parent = "t3";
  view.byte_offset = 512 * 4;
  view.ndim = 2;
  view.shape[0] = 2;
  view.shape[1] = 512;
  view.strides[0] = 512;
  view.strides[1] = 1;
  return check(wb_tensor_view(topic, &view), "wb_tensor_view");
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: relay-publisher SOCKET TOPIC FIRST LAST INTERVAL_MS\n");
    return 2;
  }
  uint64_t first = strtoull(argv[3], NULL, 10), last = strtoull(argv[4], NULL, 10);
  long interval = strtol(argv[5], NULL, 10);
  wb_attach_options ao = WB_ATTACH_OPTIONS_INIT;
  ao.socket_path = argv[1];
  wb_client *c;
  wb_topic *topic;
  wb_topic_options to = WB_TOPIC_OPTIONS_INIT;
  if (check(wb_attach(&ao, &c), "wb_attach") || check(wb_topic_create(c, argv[2], &to, &topic), "wb_topic_create") ||
      create(topic)) {
    return 1;
  }
  for (uint64_t v = first; v <= last; ++v) {
    wb_update *u;
    if (check(wb_update_begin(topic, 5000, &u), "wb_update_begin") || check(wb_update_set_version(u, v), "set_version")) return 1;
    for (uint32_t t = 0; t < TENSORS; ++t) {
      if (v != 1 && v % 10 != 0 && t != v % TENSORS) continue;
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      if (check(wb_update_tensor_at(u, t, &info), "wb_update_tensor_at")) return 1;
      fill(info.data, info.nbytes, v, t);
    }
    char meta[32];
    int n = snprintf(meta, sizeof(meta), "step=%llu", (unsigned long long)v);
    if (check(wb_update_publish(u, meta, (uint32_t)n, NULL), "wb_update_publish")) return 1;
    struct timespec ts = {interval / 1000, (interval % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  return check(wb_detach(c), "wb_detach");
}
