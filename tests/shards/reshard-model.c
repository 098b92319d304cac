#include "reshard-model.h"

#include <stdlib.h>

#define HEADS 32
#define KV_HEADS 8
#define HEAD_DIM 2
#define HIDDEN 8
#define VOCAB_PAD 64

const rm_logical rm_model[RM_TENSORS] = {
    {"col", 2, {90, 16}, 0, false},  {"row", 2, {16, 90}, 1, false},    {"q", 2, {64, 8}, 0, false},
    {"k", 2, {16, 8}, 0, false},     {"v", 2, {16, 8}, 0, false},       {"gate", 2, {24, 8}, 0, false},
    {"up", 2, {24, 8}, 0, false},    {"embed", 2, {100, 8}, 0, false},  {"norm", 1, {16, 0}, 0, true},
};

static uint64_t logical_index(const rm_logical *l, const int64_t *coords) {
  uint64_t i = 0;
  for (uint32_t d = 0; d < l->ndim; ++d) i = i * (uint64_t)l->shape[d] + (uint64_t)coords[d];
  return i;
}

int rm_shard_of(uint32_t t, uint32_t rank, uint32_t ranks, wb_shard_spec *spec) {
  const rm_logical *l = &rm_model[t];
  *spec = (wb_shard_spec)WB_SHARD_SPEC_INIT;
  spec->dtype = WB_DTYPE_U32;
  spec->name = l->name;
  spec->ndim = l->ndim;
  for (uint32_t d = 0; d < l->ndim; ++d) {
    spec->logical_shape[d] = l->shape[d];
    spec->extent[d] = l->shape[d];
  }
  if (l->replicated) {
    spec->flags = WB_SHARD_REPLICATED;
    return WB_OK;
  }
  return wb_split(l->shape[l->split_dim], rank, ranks, WB_SPLIT_CHUNK, &spec->offset[l->split_dim],
                  &spec->extent[l->split_dim]);
}

void rm_fill_shard(uint32_t t, const wb_shard_spec *spec, uint32_t *data, uint64_t v) {
  const rm_logical *l = &rm_model[t];
  int64_t rows = l->ndim == 2 ? spec->extent[0] : 1, cols = spec->extent[l->ndim - 1];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      int64_t coords[2] = {spec->offset[0] + r, spec->offset[1] + c};
      if (l->ndim == 1) coords[0] = spec->offset[0] + c;
      data[r * cols + c] = fx_pattern(v, t, logical_index(l, coords));
    }
  }
}

int rm_publish_rank(wb_topic *topic, uint32_t rank, uint32_t ranks, uint64_t versions) {
  wb_shard_spec specs[RM_TENSORS];
  int rc;
  for (uint32_t t = 0; t < RM_TENSORS; ++t) {
    if ((rc = rm_shard_of(t, rank, ranks, &specs[t])) != WB_OK) return rc;
  }
  if ((rc = wb_shard_alloc(topic, specs, RM_TENSORS)) != WB_OK) return rc;
  for (;;) {
    /* Done once this rank published the last version (a restarted rank may find it did before its death). */
    wb_rank_info me = WB_RANK_INFO_INIT;
    if ((rc = wb_topic_rank_info(topic, rank, &me)) != WB_OK) return rc;
    if (me.published >= versions) return WB_OK;
    wb_update *u;
    uint64_t v;
    if ((rc = wb_update_begin(topic, 20000, &u)) != WB_OK) return rc;
    if ((rc = wb_update_version(u, &v)) != WB_OK) return rc;
    for (uint32_t t = 0; t < RM_TENSORS; ++t) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      if ((rc = wb_update_shard(u, rm_model[t].name, 0, &info)) != WB_OK) return rc;
      rm_fill_shard(t, &specs[t], info.data, v);
    }
    if (rand() % 4 == 0) fx_sleep_ms(rand() % 3); /* let the ranks drift apart */
    if ((rc = wb_update_publish(u, NULL, 0, NULL)) != WB_OK) return rc;
  }
}

static wb_slice_part *add_part(rm_dests *s, uint32_t t) {
  wb_slice_part *part = &s->parts[s->part_count];
  *part = (wb_slice_part)WB_SLICE_PART_INIT;
  part->name = rm_model[t].name;
  part->ndim = rm_model[t].ndim;
  for (uint32_t d = 0; d < part->ndim; ++d) part->extent[d] = rm_model[t].shape[d];
  s->tensor_of_part[s->part_count++] = t;
  return part;
}

/* A destination of the parts added since first_part, concatenated along dimension 0, its buffer malloc'd. */
static int add_dest(rm_dests *s, uint32_t first_part) {
  wb_slice_dest *d = &s->dests[s->count++];
  *d = (wb_slice_dest)WB_SLICE_DEST_INIT;
  d->first_part = first_part;
  d->part_count = s->part_count - first_part;
  d->dtype = WB_DTYPE_U32;
  d->ndim = s->parts[first_part].ndim;
  for (uint32_t i = first_part; i < s->part_count; ++i) {
    const wb_slice_part *part = &s->parts[i];
    d->shape[0] += part->extent[0] + part->pad;
    for (uint32_t k = 1; k < d->ndim; ++k) d->shape[k] = part->extent[k];
  }
  uint64_t n = 1;
  for (uint32_t k = 0; k < d->ndim; ++k) n *= (uint64_t)d->shape[k];
  d->dst_bytes = n * sizeof(uint32_t);
  d->dst = malloc(d->dst_bytes);
  return d->dst != NULL ? WB_OK : WB_E_NOMEM;
}

static int add_qkv(rm_dests *s, uint32_t m, uint32_t M) {
  uint32_t first = s->part_count;
  int rc = wb_parts_qkv("q", "k", "v", HEADS, KV_HEADS, HEAD_DIM, HIDDEN, m, M, &s->parts[first]);
  if (rc != WB_OK) return rc;
  for (uint32_t i = 0; i < 3; ++i) s->tensor_of_part[s->part_count++] = RM_Q + i;
  return add_dest(s, first);
}

int rm_tp_layout(uint32_t m, uint32_t M, rm_dests *s) {
  memset(s, 0, sizeof(*s));
  uint32_t first = s->part_count;
  wb_slice_part *part = add_part(s, RM_COL);
  int rc = wb_split(rm_model[RM_COL].shape[0], m, M, WB_SPLIT_CHUNK, &part->offset[0], &part->extent[0]);
  if (rc != WB_OK || (rc = add_dest(s, first)) != WB_OK) return rc;
  first = s->part_count;
  part = add_part(s, RM_ROW);
  rc = wb_split(rm_model[RM_ROW].shape[1], m, M, WB_SPLIT_CHUNK, &part->offset[1], &part->extent[1]);
  if (rc != WB_OK || (rc = add_dest(s, first)) != WB_OK || (rc = add_qkv(s, m, M)) != WB_OK) return rc;
  first = s->part_count;
  const char *names[2] = {"gate", "up"};
  int64_t rows[2] = {rm_model[RM_GATE].shape[0], rm_model[RM_UP].shape[0]};
  if ((rc = wb_parts_merged(names, rows, 2, HIDDEN, m, M, &s->parts[first])) != WB_OK) return rc;
  s->tensor_of_part[s->part_count++] = RM_GATE;
  s->tensor_of_part[s->part_count++] = RM_UP;
  if ((rc = add_dest(s, first)) != WB_OK) return rc;
  first = s->part_count;
  part = add_part(s, RM_EMBED);
  int64_t padded;
  rc = wb_split_vocab(rm_model[RM_EMBED].shape[0], VOCAB_PAD, m, M, &part->offset[0], &part->extent[0], &padded);
  if (rc != WB_OK) return rc;
  part->pad = padded - part->extent[0];
  if ((rc = add_dest(s, first)) != WB_OK) return rc;
  first = s->part_count;
  add_part(s, RM_NORM);
  return add_dest(s, first);
}

int rm_qkv_layouts(rm_dests *s) {
  memset(s, 0, sizeof(*s));
  for (uint32_t m = 0; m < RM_QKV_RANKS; ++m) {
    int rc = add_qkv(s, m, RM_QKV_RANKS);
    if (rc != WB_OK) return rc;
  }
  return WB_OK;
}

void rm_free_dests(rm_dests *s) {
  for (uint32_t d = 0; d < s->count; ++d) free(s->dests[d].dst);
  s->count = 0;
}

int64_t rm_check_dest(const rm_dests *s, uint32_t d, uint64_t v) {
  int64_t cols[RM_TENSORS];
  for (uint32_t t = 0; t < RM_TENSORS; ++t) cols[t] = rm_model[t].ndim == 2 ? rm_model[t].shape[1] : 1;
  return fx_check_dest(&s->dests[d], s->parts, s->tensor_of_part, cols, v, NULL);
}
