/* A reader's plan on a sharded topic, host tensors: N = 3 ranks hold FSDP dim-0 shards of uneven chunks
 * (torch.chunk: 10 rows as 4, 4, 2), and every rank a replica of a norm; M = 2 readers' destinations — a column
 * slice, a row slice (dimension 1), fused QKV with GQA, merged gate_up and the norm — hold, element for element,
 * the reference slices of each committed version, for several versions; a plan made before every rank sealed is
 * WB_E_STATE naming the ranks that have not. */
#include <stdlib.h>

#include "fixture.h"

#define RANKS 3
#define READERS 2
#define VERSIONS 4
#define MAX_DESTS 8
#define MAX_PARTS 16

enum { T_W, T_Q, T_K, T_V, T_GATE, T_UP, T_NORM, T_COUNT };

static const char *const kNames[T_COUNT] = {"w", "q", "k", "v", "gate", "up", "norm"};
static const int64_t kRows[T_COUNT] = {10, 64, 16, 16, 8, 8, 8};
static const int64_t kCols[T_COUNT] = {8, 4, 4, 4, 4, 4, 1};

static int tensor_id(const char *name) {
  for (int t = 0; t < T_COUNT; ++t) {
    if (strcmp(name, kNames[t]) == 0) return t;
  }
  return -1;
}

static uint32_t ndim_of(int t) { return t == T_NORM ? 1 : 2; }

/* Rank r's shard of tensor t: rows of its torch.chunk, or the whole norm, replicated. */
static wb_shard_spec shard_spec(int t, uint32_t r) {
  wb_shard_spec s = WB_SHARD_SPEC_INIT;
  s.dtype = WB_DTYPE_U32;
  s.name = kNames[t];
  s.ndim = ndim_of(t);
  s.logical_shape[0] = kRows[t];
  s.logical_shape[1] = kCols[t];
  s.extent[1] = kCols[t];
  if (t == T_NORM) {
    s.flags = WB_SHARD_REPLICATED;
    s.extent[0] = kRows[t];
    return s;
  }
  assert_int_equal(wb_split(kRows[t], r, RANKS, WB_SPLIT_CHUNK, &s.offset[0], &s.extent[0]), WB_OK);
  return s;
}

static void create_rank(wb_client *c, uint32_t r, wb_topic **out) {
  wb_rank_options o = WB_RANK_OPTIONS_INIT;
  o.rank = r;
  o.ranks = RANKS;
  FX_OK(wb_topic_create_rank(c, "model", &o, out));
  wb_shard_spec specs[T_COUNT];
  for (int t = 0; t < T_COUNT; ++t) specs[t] = shard_spec(t, r);
  FX_OK(wb_shard_alloc(*out, specs, T_COUNT));
}

/* Rank r writes its shards of version v: element = fx_pattern(v, t, logical linear index). */
static void publish_rank(wb_topic *topic, uint32_t r, uint64_t *version) {
  wb_update *u;
  uint64_t v;
  FX_OK(wb_update_begin(topic, 5000, &u));
  FX_OK(wb_update_version(u, &v));
  for (int t = 0; t < T_COUNT; ++t) {
    wb_shard_spec s = shard_spec(t, r);
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_shard(u, kNames[t], 0, &info));
    uint32_t *data = info.data;
    int64_t cols = ndim_of(t) == 2 ? kCols[t] : 1;
    for (int64_t i = 0; i < s.extent[0] * cols; ++i) {
      data[i] = fx_pattern(v, (uint32_t)t, (uint64_t)(s.offset[0] * cols + i));
    }
  }
  FX_OK(wb_update_publish(u, NULL, 0, version));
}

typedef struct reader {
  wb_slice_dest dests[MAX_DESTS];
  wb_slice_part parts[MAX_PARTS];
  uint32_t ndests, nparts;
  uint32_t *buffers[MAX_DESTS];
} reader;

static wb_slice_part *whole_rows_part(reader *r, const char *name, int64_t first, int64_t count) {
  int t = tensor_id(name);
  wb_slice_part p = WB_SLICE_PART_INIT;
  p.ndim = ndim_of(t);
  p.name = name;
  p.offset[0] = first;
  p.extent[0] = count;
  p.extent[1] = kCols[t];
  r->parts[r->nparts] = p;
  return &r->parts[r->nparts++];
}

static void add_dest(reader *r, uint32_t part_count, uint32_t concat_dim, uint32_t ndim, int64_t rows,
                     int64_t cols) {
  wb_slice_dest d = WB_SLICE_DEST_INIT;
  d.first_part = r->nparts - part_count;
  d.part_count = part_count;
  d.concat_dim = concat_dim;
  d.ndim = ndim;
  d.shape[0] = rows;
  d.shape[1] = cols;
  d.dtype = WB_DTYPE_U32;
  d.dst_bytes = (uint64_t)(rows * cols) * 4;
  uint32_t *buf = malloc(d.dst_bytes);
  assert_non_null(buf);
  d.dst = buf;
  r->buffers[r->ndests] = buf;
  r->dests[r->ndests++] = d;
}

static void build_reader(reader *r, uint32_t rank) {
  memset(r, 0, sizeof(*r));
  int64_t off, ext;
  FX_OK(wb_split(kRows[T_W], rank, READERS, WB_SPLIT_EVEN, &off, &ext));
  whole_rows_part(r, "w", off, ext);
  add_dest(r, 1, 0, 2, ext, kCols[T_W]);
  FX_OK(wb_split(kCols[T_W], rank, READERS, WB_SPLIT_EVEN, &off, &ext));
  wb_slice_part *p = whole_rows_part(r, "w", 0, kRows[T_W]);
  p->offset[1] = off;
  p->extent[1] = ext;
  add_dest(r, 1, 1, 2, kRows[T_W], ext);
  FX_OK(wb_parts_qkv("q", "k", "v", 32, 8, 2, 4, rank, READERS, &r->parts[r->nparts]));
  int64_t qkv_rows = r->parts[r->nparts].extent[0] + 2 * r->parts[r->nparts + 1].extent[0];
  r->nparts += 3;
  add_dest(r, 3, 0, 2, qkv_rows, 4);
  const char *const gate_up[2] = {"gate", "up"};
  const int64_t gate_up_rows[2] = {kRows[T_GATE], kRows[T_UP]};
  FX_OK(wb_parts_merged(gate_up, gate_up_rows, 2, 4, rank, READERS, &r->parts[r->nparts]));
  r->nparts += 2;
  add_dest(r, 2, 0, 2, (kRows[T_GATE] + kRows[T_UP]) / READERS, 4);
  whole_rows_part(r, "norm", 0, kRows[T_NORM]);
  add_dest(r, 1, 0, 1, kRows[T_NORM], 1);
}

/* Every element of destination i against the reference slices of version v, pads zero. */
static void check_dest(const reader *r, uint32_t i, uint64_t v) {
  uint32_t ids[MAX_PARTS], part = 0;
  for (uint32_t j = 0; j < r->nparts; ++j) ids[j] = (uint32_t)tensor_id(r->parts[j].name);
  int64_t bad = fx_check_dest(&r->dests[i], r->parts, ids, kCols, v, &part);
  if (bad >= 0) {
    fail_msg("dests[%u] ('%s' part %u) element %lld: %u (version %llu)", i, r->parts[part].name, part,
             (long long)bad, r->buffers[i][bad], (unsigned long long)v);
  }
}

static void readers_copy_their_slices_of_every_version(void **state) {
  wb_client *rank_clients[RANKS], *rc;
  wb_topic *ranks[RANKS], *topic;
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(fx_attach(*state, "rank", &rank_clients[r]));
  FX_OK(fx_attach(*state, "server", &rc));
  for (uint32_t r = 0; r < RANKS; ++r) create_rank(rank_clients[r], r, &ranks[r]);
  FX_OK(wb_topic_open(rc, "model", &topic));

  reader readers[READERS];
  wb_plan *plans[READERS];
  build_reader(&readers[0], 0);
  /* Before every rank sealed: no plan, naming the ranks that have not. */
  FX_OK(wb_topic_seal_rank(ranks[1], 5000));
  FX_EXPECT(wb_plan_create(topic, readers[0].dests, readers[0].ndests, readers[0].parts, readers[0].nparts,
                           &plans[0]),
            WB_E_STATE);
  assert_non_null(strstr(wb_last_error(), "rank(s) 0, 2"));
  FX_OK(wb_topic_seal_rank(ranks[0], 5000));
  FX_OK(wb_topic_seal_rank(ranks[2], 5000));

  for (uint32_t m = 0; m < READERS; ++m) {
    if (m > 0) build_reader(&readers[m], m);
    FX_OK(wb_plan_create(topic, readers[m].dests, readers[m].ndests, readers[m].parts, readers[m].nparts,
                         &plans[m]));
    wb_plan_info info = WB_PLAN_INFO_INIT;
    FX_OK(wb_plan_get_info(plans[m], &info));
    assert_int_equal(info.dests, 5);
    assert_int_equal(info.pad_bytes, 0);
  }
  for (uint32_t k = 0; k < VERSIONS; ++k) {
    uint64_t v = 0, latest = 0;
    for (uint32_t r = 0; r < RANKS; ++r) publish_rank(ranks[r], r, &v);
    FX_OK(wb_topic_wait(topic, v - 1, 5000, &latest));
    assert_int_equal(latest, v);
    wb_snapshot *s;
    FX_OK(wb_snapshot_acquire(topic, v, 1000, &s));
    for (uint32_t m = 0; m < READERS; ++m) {
      for (uint32_t i = 0; i < readers[m].ndests; ++i) memset(readers[m].buffers[i], 0xAB, readers[m].dests[i].dst_bytes);
      FX_OK(wb_plan_run(plans[m], s, NULL));
      for (uint32_t i = 0; i < readers[m].ndests; ++i) check_dest(&readers[m], i, v);
    }
    FX_OK(wb_snapshot_release(s));
  }
  for (uint32_t m = 0; m < READERS; ++m) {
    wb_plan_destroy(plans[m]);
    for (uint32_t i = 0; i < readers[m].ndests; ++i) free(readers[m].buffers[i]);
  }
  FX_OK(wb_detach(rc));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_detach(rank_clients[r]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(readers_copy_their_slices_of_every_version, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
