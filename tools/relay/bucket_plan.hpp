// Flat buckets: the bytes of the tensors a version sends, packed back to back in their order into buckets of
// at most bucket_size bytes. A tensor larger than the space left is split across as many buckets as it needs,
// so every bucket but the last is full. Both ends compute the same plan from the same tensor list.
#pragma once

#include <cstdint>
#include <vector>

namespace wbrelay {

struct Piece {
  uint32_t item;           // index into the list the plan was made from
  uint64_t item_offset;    // from the start of the tensor's bytes
  uint64_t bucket_offset;  // from the start of the bucket
  uint64_t bytes;
};

struct Bucket {
  uint64_t bytes = 0;
  std::vector<Piece> pieces;
};

// item_bytes[i] is the size of the i-th tensor to send; zero-byte tensors get no piece. bucket_size > 0.
std::vector<Bucket> plan_buckets(const std::vector<uint64_t> &item_bytes, uint64_t bucket_size);

}  // namespace wbrelay
