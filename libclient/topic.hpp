// wb_topic, the handle of wb_topic_create / wb_topic_open (topic.cpp): the topic's registry slot, this
// process's view of its tensors, and the update and snapshots open on it.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>

#include "error.hpp"
#include "layout.hpp"
#include "notify_set.hpp"
#include "tensor_list.hpp"
#include "weightbus/weightbus.h"

struct wb_client;
struct wb_update;
struct wb_snapshot;
struct wb_armed;

struct wb_topic {
  wb_client *client = nullptr;
  uint32_t slot = 0;  // in the registry's topic table
  bool publisher = false;
  wb::shm::Topic *entry = nullptr;
  // Sharded topics: the rank this handle publishes (wb_topic_create_rank), kNone for readers and plain topics,
  // and whether it sealed its layout (wb_topic_seal_rank, or the first begin).
  uint32_t rank = wb::shm::kNone;
  bool rank_sealed = false;

  wb::TensorList tensors;
  // The publisher's count of the topic's tensors that are not views, and the topic's tensor_count it was
  // counted at (update.cpp's root_count: counted again when that moves).
  uint32_t roots = 0;
  uint32_t roots_at = UINT32_MAX;

  std::mutex handles_mutex;  // guards the fields below
  std::set<wb_snapshot *> snapshots;
  std::set<wb_armed *> arms;  // wb_plan_arm's, each holding a lease like a snapshot
  wb_update *update = nullptr;
  bool update_reserved = false;  // a begin is waiting for leases

  wb::NotifySet notify;  // behind wb_topic_notify_fd (notify.cpp)
};

namespace wb {

// WB_E_NOT_FOUND once the topic was removed (wb_topic_remove), or while a removal checks it (then it may stay):
// a handle of a removed topic can only be closed.
inline int check_topic_live(const wb_topic *topic) {
  if (topic->entry->state.load(std::memory_order_seq_cst) == uint32_t(shm::TopicState::kLive)) return WB_OK;
  return fail(WB_E_NOT_FOUND, "topic '%s' was removed (wb_topic_remove): close this handle", topic->entry->name);
}

// Creates or takes over a topic as its publisher (wb_topic_create), or a rank of a sharded one
// (wb_topic_create_rank: ranks >= 1), once the caller has checked its arguments.
int create_topic(wb_client *client, const char *name, uint32_t replicas, uint32_t ranks, uint32_t rank,
                 wb_topic **out);

// WB_E_INVAL for a plain topic, WB_E_ROLE for a handle that publishes no rank of it; `what` says what was tried.
int check_rank_publisher(wb_topic *topic, const char *what);

// Seals the layout of the rank this handle publishes (SealRank), once: wb_topic_seal_rank and a rank's first
// wb_update_begin (seal.cpp). Sets topic->rank_sealed.
int seal_rank(wb_topic *topic);

// Frees a topic handle and what only this process holds of it (its notify fds, its place in the client's
// set); allocates nothing, so that wb_detach cannot stop half-way. The caller aborted its update and let go
// of its snapshots.
void release_topic(wb_topic *topic);

}  // namespace wb
