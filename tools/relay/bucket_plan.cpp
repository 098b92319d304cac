#include "bucket_plan.hpp"

#include <algorithm>

namespace wbrelay {

std::vector<Bucket> plan_buckets(const std::vector<uint64_t> &item_bytes, uint64_t bucket_size) {
  std::vector<Bucket> buckets;
  for (uint32_t i = 0; i < item_bytes.size(); ++i) {
    for (uint64_t done = 0; done < item_bytes[i];) {
      if (buckets.empty() || buckets.back().bytes == bucket_size) buckets.emplace_back();
      Bucket &b = buckets.back();
      uint64_t n = std::min(item_bytes[i] - done, bucket_size - b.bytes);
      b.pieces.push_back(Piece{i, done, b.bytes, n});
      b.bytes += n;
      done += n;
    }
  }
  return buckets;
}

}  // namespace wbrelay
