/* A reader's plan on a plain topic (each tensor one shard of itself), host tensors: for M = 1, 2 and 4 readers
 * (and 16 for QKV) every rank's destinations — a column slice, a row slice (dimension 1), the same column slice
 * into a strided buffer, fused QKV with GQA (32 query heads, 8 KV heads), merged gate_up and a padded vocabulary
 * slice — hold, element for element, the reference slice of the version the snapshot leased, for several
 * versions; pads are zero; wb_plan_get_info counts the copies; a snapshot of another topic is refused. */
#include <stdlib.h>

#include "fixture.h"

#define VERSIONS 4
#define MAX_DESTS 8
#define MAX_PARTS 16

enum { T_W, T_Q, T_K, T_V, T_GATE, T_UP, T_EMBED, T_COUNT };

static const char *const kNames[T_COUNT] = {"w", "q", "k", "v", "gate", "up", "embed"};
static const int64_t kRows[T_COUNT] = {12, 64, 16, 16, 8, 8, 10};
static const int64_t kCols[T_COUNT] = {8, 4, 4, 4, 4, 4, 4};

static int tensor_id(const char *name) {
  for (int t = 0; t < T_COUNT; ++t) {
    if (strcmp(name, kNames[t]) == 0) return t;
  }
  return -1;
}

static void create_model(wb_client *c, wb_topic **out) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  FX_OK(wb_topic_create(c, "model", &o, out));
  wb_tensor_spec specs[T_COUNT];
  for (int t = 0; t < T_COUNT; ++t) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.dtype = WB_DTYPE_U32;
    s.name = kNames[t];
    s.ndim = 2;
    s.shape[0] = kRows[t];
    s.shape[1] = kCols[t];
    specs[t] = s;
  }
  FX_OK(wb_tensor_alloc(*out, specs, T_COUNT));
}

static void publish(wb_topic *topic, uint64_t *version) {
  wb_update *u;
  uint64_t v;
  FX_OK(wb_update_begin(topic, 5000, &u));
  FX_OK(wb_update_version(u, &v));
  for (int t = 0; t < T_COUNT; ++t) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_update_tensor(u, kNames[t], &info));
    fx_fill_u32(info.data, (uint64_t)(kRows[t] * kCols[t]), v, (uint32_t)t);
  }
  FX_OK(wb_update_publish(u, NULL, 0, version));
}

/* One reader's destinations and their parts. */
typedef struct reader {
  wb_slice_dest dests[MAX_DESTS];
  wb_slice_part parts[MAX_PARTS];
  uint32_t ndests, nparts;
  uint32_t *buffers[MAX_DESTS];
} reader;

static wb_slice_part *rows_part(reader *r, const char *name, int64_t first, int64_t count) {
  wb_slice_part p = WB_SLICE_PART_INIT;
  p.ndim = 2;
  p.name = name;
  p.offset[0] = first;
  p.extent[0] = count;
  p.extent[1] = kCols[tensor_id(name)];
  r->parts[r->nparts] = p;
  return &r->parts[r->nparts++];
}

/* A destination over the last part_count parts, of `rows` x `cols` elements with row stride `stride`. */
static void add_dest(reader *r, uint32_t part_count, uint32_t concat_dim, int64_t rows, int64_t cols,
                     int64_t stride) {
  wb_slice_dest d = WB_SLICE_DEST_INIT;
  d.first_part = r->nparts - part_count;
  d.part_count = part_count;
  d.concat_dim = concat_dim;
  d.ndim = 2;
  d.shape[0] = rows;
  d.shape[1] = cols;
  if (stride != cols) {
    d.strides[0] = stride;
    d.strides[1] = 1;
  }
  d.dtype = WB_DTYPE_U32;
  d.dst_bytes = (uint64_t)(rows * stride) * 4;
  uint32_t *buf = malloc(d.dst_bytes);
  assert_non_null(buf);
  d.dst = buf;
  r->buffers[r->ndests] = buf;
  r->dests[r->ndests++] = d;
}

/* Rank `rank` of `ranks` readers, vLLM's layouts; qkv_ranks for the QKV destination. */
static void build_reader(reader *r, uint32_t rank, uint32_t ranks, uint32_t qkv_rank, uint32_t qkv_ranks) {
  memset(r, 0, sizeof(*r));
  int64_t off, ext, padded;
  FX_OK(wb_split(kRows[T_W], rank, ranks, WB_SPLIT_EVEN, &off, &ext));
  rows_part(r, "w", off, ext);
  add_dest(r, 1, 0, ext, kCols[T_W], kCols[T_W]); /* column parallel */
  rows_part(r, "w", off, ext);
  add_dest(r, 1, 0, ext, kCols[T_W], kCols[T_W] + 2); /* the same into a strided buffer */
  FX_OK(wb_split(kCols[T_W], rank, ranks, WB_SPLIT_EVEN, &off, &ext));
  wb_slice_part *p = rows_part(r, "w", 0, kRows[T_W]); /* row parallel: columns [off, off + ext) */
  p->offset[1] = off;
  p->extent[1] = ext;
  add_dest(r, 1, 1, kRows[T_W], ext, ext);
  FX_OK(wb_parts_qkv("q", "k", "v", 32, 8, 2, 4, qkv_rank, qkv_ranks, &r->parts[r->nparts]));
  int64_t qkv_rows = r->parts[r->nparts].extent[0] + 2 * r->parts[r->nparts + 1].extent[0];
  r->nparts += 3;
  add_dest(r, 3, 0, qkv_rows, 4, 4);
  const char *const gate_up[2] = {"gate", "up"};
  const int64_t gate_up_rows[2] = {kRows[T_GATE], kRows[T_UP]};
  FX_OK(wb_parts_merged(gate_up, gate_up_rows, 2, 4, rank, ranks, &r->parts[r->nparts]));
  r->nparts += 2;
  add_dest(r, 2, 0, (kRows[T_GATE] + kRows[T_UP]) / ranks, 4, 4);
  FX_OK(wb_split_vocab(kRows[T_EMBED], 4, rank, ranks, &off, &ext, &padded));
  rows_part(r, "embed", off, ext)->pad = padded - ext;
  add_dest(r, 1, 0, padded, 4, 4);
}

static void free_reader(reader *r) {
  for (uint32_t i = 0; i < r->ndests; ++i) free(r->buffers[i]);
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

static void run_and_check(wb_topic *reader_topic, wb_plan *plan, reader *r, uint64_t v) {
  for (uint32_t i = 0; i < r->ndests; ++i) memset(r->buffers[i], 0xAB, r->dests[i].dst_bytes);
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader_topic, v, 1000, &s));
  FX_OK(wb_plan_run(plan, s, NULL));
  FX_OK(wb_snapshot_release(s));
  for (uint32_t i = 0; i < r->ndests; ++i) check_dest(r, i, v);
}

static void every_rank_reads_its_slices(void **state) {
  wb_client *pc, *rc;
  wb_topic *pub, *topic;
  FX_OK(fx_attach(*state, "trainer", &pc));
  FX_OK(fx_attach(*state, "server", &rc));
  create_model(pc, &pub);
  FX_OK(wb_topic_open(rc, "model", &topic));
  /* (ranks, QKV ranks): QKV also over 16, where ranks 2k and 2k+1 share KV head k. */
  const uint32_t layouts[][2] = {{1, 1}, {2, 2}, {4, 4}, {4, 16}};
  wb_plan *plans[4 * 16];
  reader *readers = calloc(4 * 16, sizeof(reader));
  assert_non_null(readers);
  uint32_t n = 0;
  for (uint32_t l = 0; l < 4; ++l) {
    for (uint32_t q = 0; q < layouts[l][1]; ++q) {
      build_reader(&readers[n], q % layouts[l][0], layouts[l][0], q, layouts[l][1]);
      FX_OK(wb_plan_create(topic, readers[n].dests, readers[n].ndests, readers[n].parts, readers[n].nparts,
                           &plans[n]));
      ++n;
    }
  }
  for (uint32_t k = 0; k < VERSIONS; ++k) {
    uint64_t v;
    publish(pub, &v);
    for (uint32_t i = 0; i < n; ++i) run_and_check(topic, plans[i], &readers[i], v);
  }
  for (uint32_t i = 0; i < n; ++i) {
    wb_plan_destroy(plans[i]);
    free_reader(&readers[i]);
  }
  free(readers);
  FX_OK(wb_detach(rc));
  FX_OK(wb_detach(pc));
}

/* Rank 1 of 2: the row slice (one 2-D copy of 12 rows of 16 bytes) and the padded vocabulary (rows [6:10) and 2
 * zero rows). */
static void info_counts_copies_and_pads(void **state) {
  wb_client *c;
  wb_topic *pub;
  FX_OK(fx_attach(*state, "both", &c));
  create_model(c, &pub);
  reader r;
  build_reader(&r, 1, 2, 1, 2);
  wb_slice_dest dests[2] = {r.dests[2], r.dests[5]};
  wb_slice_part parts[2] = {r.parts[dests[0].first_part], r.parts[dests[1].first_part]};
  dests[0].first_part = 0;
  dests[1].first_part = 1;
  wb_plan *plan;
  FX_OK(wb_plan_create(pub, dests, 2, parts, 2, &plan));
  wb_plan_info info = WB_PLAN_INFO_INIT;
  FX_OK(wb_plan_get_info(plan, &info));
  assert_int_equal(info.dests, 2);
  assert_int_equal(info.copies, 2);
  assert_int_equal(info.copies_2d, 1);
  assert_int_equal(info.bytes, 12 * 16 + 4 * 16);
  assert_int_equal(info.pad_bytes, 2 * 16);
  FX_EXPECT(wb_plan_get_info(NULL, &info), WB_E_INVAL);
  wb_plan_info small = WB_PLAN_INFO_INIT;
  small.struct_size = 4;
  FX_EXPECT(wb_plan_get_info(plan, &small), WB_E_INVAL);

  /* A snapshot of another topic. */
  wb_topic *other;
  FX_OK(fx_create_topic(c, "other", 2, 1, 4, &other));
  FX_OK(fx_publish(other, 1, 4, NULL));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(other, 0, 1000, &s));
  FX_EXPECT(wb_plan_run(plan, s, NULL), WB_E_INVAL);
  assert_non_null(strstr(wb_last_error(), "'other'"));
  FX_EXPECT(wb_plan_run(NULL, s, NULL), WB_E_INVAL);
  FX_OK(wb_snapshot_release(s));
  wb_plan_destroy(plan);
  wb_plan_destroy(NULL);
  free_reader(&r);
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_rank_reads_its_slices, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(info_counts_copies_and_pads, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
