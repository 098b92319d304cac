// How frameworks split a dimension over ranks (wb_split, wb_split_vocab, wb_parts_qkv, wb_parts_merged): the
// formulas of vLLM's linear.py and vocab_parallel_embedding.py and of torch.chunk / DTensor Shard(d), so that a
// reader's parts match, row for row, what the framework would load (docs/design/sharded-models.md, section 4).
#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb {

namespace {

int check_rank(uint32_t rank, uint32_t ranks) {
  if (ranks == 0) return fail(WB_E_INVAL, "ranks is 0");
  if (rank >= ranks) return fail(WB_E_INVAL, "rank %u is out of range: there are %u ranks", rank, ranks);
  return WB_OK;
}

// torch.chunk: chunks of ceil(size / ranks); once r * chunk passes size the rank is empty at the end (torch's
// Shard.local_shard_size_and_offset returns (0, size) there).
void split_chunk(int64_t size, uint32_t rank, uint32_t ranks, int64_t *offset, int64_t *extent) {
  int64_t chunk = size / ranks + (size % ranks != 0);
  int64_t start = chunk * rank;
  *offset = start < size ? start : size;
  *extent = start < size ? (size - start < chunk ? size - start : chunk) : 0;
}

// rows/ranks rows of a 2-D tensor [rows, cols], rank `rank`'s.
void row_part(const char *name, int64_t first, int64_t count, int64_t cols, wb_slice_part *out) {
  *out = WB_SLICE_PART_INIT;
  out->ndim = 2;
  out->name = name;
  out->offset[0] = first;
  out->extent[0] = count;
  out->extent[1] = cols;
}

}  // namespace

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_split(int64_t size, uint32_t rank, uint32_t ranks, uint32_t mode, int64_t *offset,
                               int64_t *extent) try {
  if (offset == nullptr || extent == nullptr) return fail(WB_E_INVAL, "offset or extent is NULL");
  if (int rc = check_rank(rank, ranks); rc != WB_OK) return rc;
  if (size < 0) return fail(WB_E_INVAL, "size is %lld: it must be >= 0", (long long)size);
  if (mode == WB_SPLIT_CHUNK) {
    split_chunk(size, rank, ranks, offset, extent);
    return WB_OK;
  }
  if (mode != WB_SPLIT_EVEN) return fail(WB_E_INVAL, "mode is %u: WB_SPLIT_EVEN or WB_SPLIT_CHUNK", mode);
  if (size % ranks != 0) {
    return fail(WB_E_SHAPE, "size %lld does not divide evenly over %u ranks (WB_SPLIT_EVEN); WB_SPLIT_CHUNK "
                "splits it as torch.chunk does", (long long)size, ranks);
  }
  *extent = size / ranks;
  *offset = *extent * rank;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_split_vocab(int64_t vocab, int64_t pad_to, uint32_t rank, uint32_t ranks, int64_t *offset,
                                     int64_t *extent, int64_t *padded_extent) try {
  if (offset == nullptr || extent == nullptr || padded_extent == nullptr) {
    return fail(WB_E_INVAL, "offset, extent or padded_extent is NULL");
  }
  if (int rc = check_rank(rank, ranks); rc != WB_OK) return rc;
  if (vocab <= 0 || pad_to <= 0) {
    return fail(WB_E_INVAL, "vocab %lld and pad_to %lld must be > 0", (long long)vocab, (long long)pad_to);
  }
  if (vocab > INT64_MAX - pad_to) return fail(WB_E_INVAL, "vocab %lld is too large", (long long)vocab);
  int64_t padded = (vocab + pad_to - 1) / pad_to * pad_to;
  if (padded % ranks != 0) {
    return fail(WB_E_SHAPE, "the vocabulary of %lld padded to a multiple of %lld (%lld) does not divide over %u "
                "ranks", (long long)vocab, (long long)pad_to, (long long)padded, ranks);
  }
  int64_t per_rank = padded / ranks;
  int64_t start = per_rank * rank;
  int64_t end = start + per_rank;
  // vLLM's get_shard_indices: the real rows are the padded range clipped to the vocabulary.
  *offset = start < vocab ? start : vocab;
  *extent = (end < vocab ? end : vocab) - *offset;
  *padded_extent = per_rank;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_parts_qkv(const char *q, const char *k, const char *v, int64_t heads, int64_t kv_heads,
                                   int64_t head_dim, int64_t hidden, uint32_t rank, uint32_t ranks,
                                   wb_slice_part out[3]) try {
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) return fail(WB_E_INVAL, "a name or out is NULL");
  if (int rc = check_rank(rank, ranks); rc != WB_OK) return rc;
  if (heads <= 0 || kv_heads <= 0 || head_dim <= 0 || hidden <= 0) {
    return fail(WB_E_INVAL, "heads %lld, kv_heads %lld, head_dim %lld and hidden %lld must be > 0", (long long)heads,
                (long long)kv_heads, (long long)head_dim, (long long)hidden);
  }
  if (heads % ranks != 0) {
    return fail(WB_E_SHAPE, "%lld query heads do not divide over %u ranks", (long long)heads, ranks);
  }
  if (ranks < kv_heads && kv_heads % ranks != 0) {
    return fail(WB_E_SHAPE, "%lld KV heads do not divide over %u ranks", (long long)kv_heads, ranks);
  }
  if (ranks >= kv_heads && ranks % kv_heads != 0) {
    return fail(WB_E_SHAPE, "%u ranks are not a multiple of %lld KV heads (each KV head is replicated on as many "
                "ranks)", ranks, (long long)kv_heads);
  }
  int64_t q_rows = heads / ranks * head_dim;
  // vLLM: ranks >= kv_heads gives each rank one KV head, shared by ranks / kv_heads consecutive ranks
  // (weight_loader's shard_id = tp_rank // num_kv_head_replicas).
  int64_t kv_per_rank = ranks >= kv_heads ? 1 : kv_heads / ranks;
  int64_t replicas = ranks >= kv_heads ? ranks / kv_heads : 1;
  int64_t kv_rows = kv_per_rank * head_dim;
  int64_t kv_first = int64_t(rank) / replicas * kv_rows;
  row_part(q, q_rows * rank, q_rows, hidden, &out[0]);
  row_part(k, kv_first, kv_rows, hidden, &out[1]);
  row_part(v, kv_first, kv_rows, hidden, &out[2]);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_parts_merged(const char *const *names, const int64_t *rows, uint32_t n, int64_t cols,
                                      uint32_t rank, uint32_t ranks, wb_slice_part *out) try {
  if (names == nullptr || rows == nullptr || out == nullptr || n == 0) {
    return fail(WB_E_INVAL, "names, rows or out is NULL, or n is 0");
  }
  if (int rc = check_rank(rank, ranks); rc != WB_OK) return rc;
  for (uint32_t i = 0; i < n; ++i) {
    if (names[i] == nullptr) return fail(WB_E_INVAL, "names[%u] is NULL", i);
    if (rows[i] < 0 || rows[i] % ranks != 0) {
      return fail(WB_E_SHAPE, "'%s' has %lld rows, which do not divide over %u ranks", names[i], (long long)rows[i],
                  ranks);
    }
  }
  for (uint32_t i = 0; i < n; ++i) row_part(names[i], rows[i] / ranks * rank, rows[i] / ranks, cols, &out[i]);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
