#include "plan_program.hpp"

#include <algorithm>
#include <unordered_map>

namespace wb::cuda {

namespace {

constexpr uint64_t kMaxChunks = (uint64_t(1) << 31) - 1;  // a launch's, counted in 32 bits

}  // namespace

void chunk_shape(uint64_t row_bytes, uint64_t rows, uint32_t *rows_per_chunk, uint32_t *pieces, uint64_t *chunks) {
  if (row_bytes <= WB_COPY_CHUNK_BYTES / 2) {
    *rows_per_chunk = uint32_t(WB_COPY_CHUNK_BYTES / row_bytes);
    *pieces = 1;
    *chunks = (rows + *rows_per_chunk - 1) / *rows_per_chunk;
    return;
  }
  uint64_t per_row = (row_bytes + WB_COPY_CHUNK_BYTES - 1) / WB_COPY_CHUNK_BYTES;
  *rows_per_chunk = 1;
  *pieces = per_row > UINT32_MAX ? UINT32_MAX : uint32_t(per_row);
  *chunks = per_row * rows;
}

bool kernel_holds(const PlanCopy &c) {
  if (c.row_bytes == 0 || c.rows == 0 || c.rows > UINT32_MAX) return false;
  uint32_t rows_per_chunk, pieces;
  uint64_t chunks;
  chunk_shape(c.row_bytes, c.rows, &rows_per_chunk, &pieces, &chunks);
  return chunks <= kMaxChunks;
}

PlanProgram make_program(const std::vector<PlanCopy> &copies, uint32_t first_sources, uint32_t max_sources) {
  PlanProgram program;
  uint32_t share = std::min(first_sources, max_sources);  // the current launch's
  std::unordered_map<uint32_t, uint32_t> local;  // plan source -> index in the current launch's sources
  for (uint32_t i = 0; i < copies.size(); ++i) {
    const PlanCopy &c = copies[i];
    wb_plan_copy d = {};
    uint64_t chunks;
    chunk_shape(c.row_bytes, c.rows, &d.rows_per_chunk, &d.pieces, &chunks);
    bool new_source = local.find(c.source) == local.end();
    if (program.launches.empty() || (new_source && local.size() == share) ||
        program.launches.back().chunks + chunks > kMaxChunks) {
      if (!program.launches.empty()) share = uint32_t(std::min<uint64_t>(uint64_t(share) * 2, max_sources));
      program.launches.push_back(PlanLaunch{uint32_t(program.copies.size()), 0, 0, {}});
      local.clear();
      new_source = true;
    }
    PlanLaunch &launch = program.launches.back();
    if (new_source) {
      local.emplace(c.source, uint32_t(launch.sources.size()));
      launch.sources.push_back(c.source);
    }
    d.src_offset = c.src_offset;
    d.dst = reinterpret_cast<uintptr_t>(c.dst);
    d.src_pitch = c.src_pitch;
    d.dst_pitch = c.dst_pitch;
    d.row_bytes = c.row_bytes;
    d.rows = uint32_t(c.rows);
    d.source = local[c.source];
    program.copies.push_back(d);
    program.first_chunks.push_back(launch.chunks);
    program.origin.push_back(i);
    launch.count++;
    launch.chunks += uint32_t(chunks);
  }
  return program;
}

}  // namespace wb::cuda
