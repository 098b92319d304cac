// This process's view of a topic's tensor list: the order of its tensors (position -> tensor slot in the
// registry's tensor table) and their names (name -> position), rebuilt when the registry's layout_gen moves on.
// A position is a tensor's place in its topic, the public "index" of weightbus.h; a slot is its registry entry.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "layout.hpp"

namespace wb {

// A tensor as a caller names it: by name, or by position when name is NULL.
struct TensorKey {
  const char *name = nullptr;
  uint32_t position = 0;
};

class TensorList {
 public:
  // The registry the list is read from, and the topic's entry in it.
  void bind(const shm::Segment *seg, const shm::Topic *topic) {
    seg_ = seg;
    topic_ = topic;
  }

  // Brings the list up to date with the registry. Takes the lock exclusively when needed.
  void refresh();

  // Looks up a name (or a position) in the up-to-date list: the tensor's slot via *slot and its position via
  // *position. WB_E_NOT_FOUND if absent.
  int find(const char *name, uint32_t *slot, uint32_t *position);
  int at(uint32_t position, uint32_t *slot);

  // find / at for many keys at once (wb_snapshot_copy_into's targets), under one take of the lock. A server
  // names the same tensors every version, so a name is first compared with the tensor at the position that the
  // previous batch found for the same key number, and hashed only when that differs. Fills (*slots)[i] and
  // (*positions)[i] for keys[i]; on an error, *failed is the number of the key.
  int find_many(const std::vector<TensorKey> &keys, std::vector<uint32_t> *slots, std::vector<uint32_t> *positions,
                uint32_t *failed);

 private:
  // The lookups, with mutex_ held (shared): a name's position, a position's slot, whether a position holds name.
  int position_of(const char *name, uint32_t *position) const;
  int slot_at(uint32_t position, uint32_t *slot) const;
  bool holds(uint32_t position, const char *name) const;

  const shm::Segment *seg_ = nullptr;
  const shm::Topic *topic_ = nullptr;

  std::shared_mutex mutex_;
  std::atomic<uint32_t> gen_{UINT32_MAX};  // the registry's layout_gen the list was built from
  std::vector<uint32_t> order_;  // position -> tensor slot
  std::unordered_map<std::string, uint32_t> by_name_;  // name -> position

  std::mutex batch_mutex_;                 // guards batch_positions_
  std::vector<uint32_t> batch_positions_;  // key number -> position, as the last find_many found them
};

}  // namespace wb
