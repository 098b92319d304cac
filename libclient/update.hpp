// wb_update, the handle of wb_update_begin (update.cpp): a publisher's version in the making.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "weightbus/weightbus.h"

struct wb_topic;

struct wb_update {
  wb_topic *topic = nullptr;
  uint64_t version = 0;
  std::vector<uint64_t> pinned;  // versions older than the latest still leased when the update began
  std::unordered_map<uint32_t, uint32_t> replica_of;  // tensor slot -> replica being written
  std::vector<uint32_t> changed;                      // tensor slots, in the order handed out
  uint32_t recovered_dirty = 0;  // R = 1: tensors left half-written by a dead writer that this one rewrites
  uint32_t record_flags = 0;     // VersionRecord::flags of the version (kRecordOnStream, kRecordGpuWord: see layout.hpp)
  void *stream = nullptr;        // published on this stream (wb_update_publish_on_stream): where arms are released
};

namespace wb {

// Internal form of wb_update_abort, used by wb_topic_close and detach.
void abort_update(wb_update *update);

// wb_update_tensor of the tensor at `position` of the topic (registry slot tensor_slot): on a sharded topic this
// rank's shard number `index` of that logical tensor (WB_E_NOT_FOUND when it holds none); on a plain topic the
// tensor itself, its only shard (index 0).
int write_tensor(wb_update *update, uint32_t tensor_slot, uint32_t position, uint32_t index, wb_tensor_info *out);

// WB_E_INVAL when a rank other than 0 of a sharded topic passes metadata (the version's metadata is rank 0's);
// checked before anything is published.
int check_rank_metadata(const wb_topic *topic, uint32_t metadata_size);

}  // namespace wb
