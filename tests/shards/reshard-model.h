/* The model of the resharding tests (test-reshard-stress, test-sharded-ranks-and-readers-can-be-threads-of-one-
 * process): its logical tensors, a trainer rank's torch.chunk shards of them, a vLLM tensor-parallel reader's
 * destinations, and the check of a destination against the reference sliced from a version.
 *
 * u32 elements: the element at logical row-major index i of tensor t in version v is fx_pattern(v, t, i). A
 * column tensor cut along dimension 0 and a row tensor cut along dimension 1 (uneven torch.chunk shards), q/k/v
 * of grouped-query attention (32 heads, 8 KV heads), gate/up, an embedding of a vocabulary of 100 (vLLM pads it
 * to 128), and a norm every rank holds replicated. */
#ifndef WEIGHTBUS_TESTS_RESHARD_MODEL_H
#define WEIGHTBUS_TESTS_RESHARD_MODEL_H

#include <stdbool.h>

#include "fixture.h"

enum { RM_COL, RM_ROW, RM_Q, RM_K, RM_V, RM_GATE, RM_UP, RM_EMBED, RM_NORM, RM_TENSORS };

#define RM_QKV_RANKS 16 /* rm_qkv_layouts: the fused QKV of each of 16 ranks (KV heads replicated) */

typedef struct rm_logical {
  const char *name;
  uint32_t ndim;
  int64_t shape[2];
  uint32_t split_dim; /* the trainer's shards cut this dimension */
  bool replicated;
} rm_logical;

extern const rm_logical rm_model[RM_TENSORS];

/* Rank `rank` of `ranks`'s shard of tensor t: torch.chunk along its split dimension, or the whole replicated. */
int rm_shard_of(uint32_t t, uint32_t rank, uint32_t ranks, wb_shard_spec *spec);
/* Writes version v into the shard `spec` of tensor t, each element from its logical coordinates. */
void rm_fill_shard(uint32_t t, const wb_shard_spec *spec, uint32_t *data, uint64_t v);
/* Registers this rank's shards of every tensor (host) and publishes versions until its Rank::published reaches
 * `versions`; returns WB_OK or the failing call's code (wb_last_error says why). */
int rm_publish_rank(wb_topic *topic, uint32_t rank, uint32_t ranks, uint64_t versions);

/* A reader's destinations, each a malloc'd host buffer (rm_free_dests frees them). */
typedef struct rm_dests {
  wb_slice_dest dests[RM_QKV_RANKS];
  wb_slice_part parts[3 * RM_QKV_RANKS];
  uint32_t tensor_of_part[3 * RM_QKV_RANKS];
  uint32_t count, part_count;
} rm_dests;

/* vLLM's layout of tensor-parallel rank m of M: column and row slices (torch.chunk), fused QKV, fused gate_up,
 * the padded vocabulary, the whole norm. */
int rm_tp_layout(uint32_t m, uint32_t M, rm_dests *s);
int rm_qkv_layouts(rm_dests *s);
void rm_free_dests(rm_dests *s);
/* The first element of dests[d] that differs from version v's reference, or -1. */
int64_t rm_check_dest(const rm_dests *s, uint32_t d, uint64_t v);

#endif
