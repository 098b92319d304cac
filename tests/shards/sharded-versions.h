/*
 * sharded-versions.h — what the tests of sharded versions share (tests/shards/, "versions" section): a model of
 * u32 logical tensors "t0".."t<n-1>", each [ranks * VX_ROWS, VX_COLS], split by rows, rank r holding rows
 * [r * VX_ROWS, (r + 1) * VX_ROWS); a rank writes its shard of tensor i in version v with the pattern
 * fx_pattern(v, vx_tag(i, r), .), so that a shard of another version or rank never matches.
 */
#ifndef WEIGHTBUS_TESTS_SHARDED_VERSIONS_H
#define WEIGHTBUS_TESTS_SHARDED_VERSIONS_H

#include "fixture.h"

#define VX_ROWS 16
#define VX_COLS 64
#define VX_ELEMS (VX_ROWS * VX_COLS)
#define VX_TIMEOUT_MS 5000

static inline uint32_t vx_tag(uint32_t tensor, uint32_t rank) { return tensor * 64 + rank; }

static inline const char *vx_name(uint32_t tensor, char buf[8]) {
  snprintf(buf, 8, "t%u", tensor);
  return buf;
}

/* Creates or joins model `name` as rank `rank` of `ranks` and registers its shard of each of the n tensors,
 * retried while WB_E_BUSY (a rank taken over from a dead publisher the broker has not reaped yet). */
static inline int vx_join_with(wb_client *c, const char *name, uint32_t rank, uint32_t ranks, uint32_t replicas,
                               uint32_t n, wb_topic **out) {
  wb_rank_options opts = WB_RANK_OPTIONS_INIT;
  opts.replicas = replicas;
  opts.rank = rank;
  opts.ranks = ranks;
  int64_t deadline = fx_now_ms() + VX_TIMEOUT_MS;
  int rc;
  while ((rc = wb_topic_create_rank(c, name, &opts, out)) == WB_E_BUSY && fx_now_ms() < deadline) fx_sleep_ms(10);
  if (rc != WB_OK) return rc;
  wb_shard_spec specs[8];
  char names[8][8];
  for (uint32_t i = 0; i < n && i < 8; ++i) {
    specs[i] = (wb_shard_spec)WB_SHARD_SPEC_INIT;
    specs[i].dtype = WB_DTYPE_U32;
    specs[i].name = vx_name(i, names[i]);
    specs[i].ndim = 2;
    specs[i].logical_shape[0] = (int64_t)ranks * VX_ROWS;
    specs[i].logical_shape[1] = VX_COLS;
    specs[i].offset[0] = (int64_t)rank * VX_ROWS;
    specs[i].extent[0] = VX_ROWS;
    specs[i].extent[1] = VX_COLS;
  }
  return wb_shard_alloc(*out, specs, n);
}

/* The same with a client of its own, labelled "rank<r>". */
static inline int vx_join(const fx_broker *b, const char *name, uint32_t rank, uint32_t ranks, uint32_t replicas,
                          uint32_t n, wb_client **c, wb_topic **out) {
  char label[16];
  snprintf(label, sizeof(label), "rank%u", rank);
  int rc = fx_attach(b, label, c);
  return rc != WB_OK ? rc : vx_join_with(*c, name, rank, ranks, replicas, n, out);
}

/* Writes this rank's shard of every tensor whose bit is set in mask with version v's pattern. */
static inline int vx_write(wb_update *u, uint32_t rank, uint32_t mask, uint64_t v) {
  for (uint32_t i = 0; i < 8; ++i) {
    if (!(mask & (1u << i))) continue;
    char name[8];
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    int rc = wb_update_tensor(u, vx_name(i, name), &info);
    if (rc != WB_OK) return rc;
    if (info.nbytes != VX_ELEMS * 4 || info.shape[0] != VX_ROWS) return WB_E_SHAPE;
    fx_fill_u32(info.data, VX_ELEMS, v, vx_tag(i, rank));
  }
  return WB_OK;
}

/* Begins, writes the shards of mask and publishes this rank's part (rank 0 with the version as metadata). */
static inline int vx_publish(wb_topic *t, uint32_t rank, uint32_t mask, uint64_t *version) {
  wb_update *u;
  uint64_t v;
  int rc = wb_update_begin(t, VX_TIMEOUT_MS, &u);
  if (rc != WB_OK) return rc;
  wb_update_version(u, &v);
  if ((rc = vx_write(u, rank, mask, v)) != WB_OK) {
    wb_update_abort(u);
    return rc;
  }
  return wb_update_publish(u, rank == 0 ? &v : NULL, rank == 0 ? sizeof(v) : 0, version);
}

/* Waits until the model's latest version is at least v (the broker commits after the last rank's publish). */
static inline int vx_await_version(wb_topic *t, uint64_t v) {
  uint64_t latest = 0;
  int rc = wb_topic_wait(t, v - 1, VX_TIMEOUT_MS, &latest);
  return rc != WB_OK ? rc : latest == v ? WB_OK : WB_E_STATE;
}

/* 0 when, in the snapshot, rank r's shard of tensor i holds version want[r]'s pattern for every rank below ranks
 * and every tensor of mask (and says so in its info.version); else -1 with a reason on stderr. */
static inline int vx_check(wb_snapshot *s, uint32_t ranks, uint32_t mask, const uint64_t *want) {
  for (uint32_t r = 0; r < ranks; ++r) {
    for (uint32_t i = 0; i < 8; ++i) {
      if (!(mask & (1u << i))) continue;
      char name[8];
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      int rc = wb_snapshot_shard(s, vx_name(i, name), r, 0, &info);
      if (rc != WB_OK) {
        fprintf(stderr, "rank %u shard of %s: %s (%s)\n", r, name, wb_strerror(rc), wb_last_error());
        return -1;
      }
      int64_t bad = fx_check_u32(info.data, VX_ELEMS, want[r], vx_tag(i, r));
      if (bad >= 0 || info.version != want[r]) {
        fprintf(stderr, "rank %u shard of %s: version %llu, element %lld differs from version %llu's\n", r, name,
                (unsigned long long)info.version, (long long)bad, (unsigned long long)want[r]);
        return -1;
      }
    }
  }
  return 0;
}

/* The same for one version on every rank. */
static inline int vx_check_all(wb_snapshot *s, uint32_t ranks, uint32_t mask, uint64_t v) {
  uint64_t want[WB_MAX_RANKS];
  for (uint32_t r = 0; r < ranks; ++r) want[r] = v;
  return vx_check(s, ranks, mask, want);
}

/* Waits until rank `rank` of the model has no publisher (the broker reaped a dead one). */
static inline int vx_await_rank_released(wb_topic *t, uint32_t rank) {
  int64_t deadline = fx_now_ms() + VX_TIMEOUT_MS;
  for (;;) {
    wb_rank_info info = WB_RANK_INFO_INIT;
    int rc = wb_topic_rank_info(t, rank, &info);
    if (rc != WB_OK) return rc;
    if (info.pid == 0) return WB_OK;
    if (fx_now_ms() >= deadline) return WB_E_TIMEOUT;
    fx_sleep_ms(5);
  }
}

/* Child for the death tests: attaches, joins model `model` as rank `rank` with n tensors, seals, publishes
 * `versions` versions writing every shard (each commits once the other ranks publish it too), then begins the
 * next, writes the first half of its shard of t0, sets *half_written to 1 and waits to be killed. */
typedef struct vx_doomed_rank {
  const fx_broker *broker;
  const char *model;
  uint32_t rank, ranks, replicas, tensors, versions;
  uint32_t *half_written; /* in fx_shared_alloc memory */
} vx_doomed_rank;

static inline int vx_doomed_rank_main(void *arg) {
  const vx_doomed_rank *d = arg;
  wb_client *c;
  wb_topic *t;
  wb_update *u;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  uint64_t v;
  CHILD_OK(vx_join(d->broker, d->model, d->rank, d->ranks, d->replicas, d->tensors, &c, &t));
  CHILD_OK(wb_topic_seal_rank(t, VX_TIMEOUT_MS));
  for (uint32_t i = 0; i < d->versions; ++i) CHILD_OK(vx_publish(t, d->rank, (1u << d->tensors) - 1, NULL));
  CHILD_OK(wb_update_begin(t, VX_TIMEOUT_MS, &u));
  CHILD_OK(wb_update_version(u, &v));
  CHILD_OK(wb_update_tensor(u, "t0", &info));
  fx_fill_u32(info.data, VX_ELEMS / 2, v, vx_tag(0, d->rank));
  fx_set_word(d->half_written, 1);
  for (;;) pause();
}

#endif /* WEIGHTBUS_TESTS_SHARDED_VERSIONS_H */
