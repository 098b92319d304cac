// Reading a topic's tensor list from the registry, and looking tensors up in it (tensor_list.hpp).
#include "tensor_list.hpp"

#include <cstring>

#include "error.hpp"
#include "geometry.hpp"

namespace wb {

void TensorList::refresh() {
  uint32_t gen = topic_->layout_gen.load(std::memory_order_acquire);
  if (gen == gen_.load(std::memory_order_acquire)) return;
  std::unique_lock lock(mutex_);
  if (gen == gen_.load(std::memory_order_relaxed)) return;
  uint32_t count = topic_->tensor_count.load(std::memory_order_acquire);
  uint32_t slot = count > 0 ? topic_->first_tensor : shm::kNone;
  // Built aside and swapped in: running out of memory half-way leaves the previous list whole.
  std::vector<uint32_t> order;
  std::unordered_map<std::string, uint32_t> by_name;
  for (uint32_t i = 0; i < count && slot < seg_->caps().max_tensors; ++i) {
    by_name.emplace(seg_->tensor(slot).name, uint32_t(order.size()));
    order.push_back(slot);
    slot = seg_->tensor(slot).next.load(std::memory_order_acquire);
  }
  order_.swap(order);
  by_name_.swap(by_name);
  gen_.store(gen, std::memory_order_release);
}

int TensorList::position_of(const char *name, uint32_t *position) const {
  int rc = geometry::check_name(name, "tensor");
  if (rc != WB_OK) return rc;
  auto found = by_name_.find(name);
  if (found == by_name_.end()) return fail(WB_E_NOT_FOUND, "topic '%s' has no tensor '%s'", topic_->name, name);
  *position = found->second;
  return WB_OK;
}

int TensorList::slot_at(uint32_t position, uint32_t *slot) const {
  if (position >= order_.size()) {
    return fail(WB_E_NOT_FOUND, "topic '%s' has no tensor at index %u", topic_->name, position);
  }
  *slot = order_[position];
  return WB_OK;
}

bool TensorList::holds(uint32_t position, const char *name) const {
  return position < order_.size() && strcmp(seg_->tensor(order_[position]).name, name) == 0;
}

int TensorList::find(const char *name, uint32_t *slot, uint32_t *position) {
  refresh();
  std::shared_lock lock(mutex_);
  int rc = position_of(name, position);
  return rc == WB_OK ? slot_at(*position, slot) : rc;
}

int TensorList::at(uint32_t position, uint32_t *slot) {
  refresh();
  std::shared_lock lock(mutex_);
  return slot_at(position, slot);
}

int TensorList::find_many(const std::vector<TensorKey> &keys, std::vector<uint32_t> *slots,
                          std::vector<uint32_t> *positions, uint32_t *failed) {
  slots->resize(keys.size());
  positions->resize(keys.size());
  refresh();
  std::lock_guard batch(batch_mutex_);
  std::vector<uint32_t> &guesses = batch_positions_;
  guesses.resize(keys.size(), UINT32_MAX);
  std::shared_lock lock(mutex_);
  for (size_t i = 0; i < keys.size(); ++i) {
    const TensorKey &key = keys[i];
    uint32_t position = key.name == nullptr ? key.position : guesses[i];
    const bool known = key.name == nullptr || holds(position, key.name);
    int rc = known ? WB_OK : position_of(key.name, &position);
    if (rc == WB_OK) rc = slot_at(position, &(*slots)[i]);
    if (rc != WB_OK) {
      *failed = uint32_t(i);
      return rc;
    }
    guesses[i] = (*positions)[i] = position;
  }
  return WB_OK;
}

}  // namespace wb
