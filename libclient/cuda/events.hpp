// GPU ordering between processes. A publisher owns one interprocess event per ring slot of each topic it
// publishes on a stream, created in that stream's context on first use, their handles stored in the version
// records. Publishing version v on a stream records slot v % ring_slots's event on it. A reader orders its
// work after version v by waiting on that slot's event: a later record for v + ring_slots only makes it wait
// longer, never shorter. Readers open each event once per context they wait in (an imported event must be
// opened in the waiting stream's context: the driver crashes on a wait across devices) and keep it until the
// publisher's set changes (Topic::event_epoch) or they detach. An IPC event handle cannot be opened in the
// process that created it: readers in the publisher's own process (any of its clients) wait on the publisher's
// event itself, which stays alive while they use it (LocalEvent).
#pragma once

#include <cuda.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "layout.hpp"

struct wb_topic;
struct wb_snapshot;
struct wb_update;

namespace wb::cuda {

// An interprocess event this process created; destroyed when its publisher retired it and no reader in this
// process still waits on it.
struct LocalEvent {
  CUevent event = nullptr;
  CUcontext context = nullptr;
  LocalEvent(CUevent e, CUcontext c) : event(e), context(c) {}
  LocalEvent(const LocalEvent &) = delete;
  LocalEvent &operator=(const LocalEvent &) = delete;
  ~LocalEvent();
};

// A rank of a sharded topic (this version: no per-rank events): waits on the host until the work on stream is
// done, so that the rank's shards hold its bytes before the rank's part of the version counts as published.
int synchronize_for_rank(wb_update *update, void *stream);

class Events {
 public:
  Events(const shm::Segment &seg, uint32_t client_id) : seg_(seg), client_id_(client_id) {}
  Events(const Events &) = delete;
  Events &operator=(const Events &) = delete;
  // Publisher: waits for the work its events track, retires them from the segment, destroys them.
  // Reader: destroys the events it opened.
  ~Events();

  // Records the event of the update's ring slot on stream.
  int record(wb_update *update, void *stream);

  // The event a reader of the snapshot must wait on, opened in the context of stream (see stream_context; a
  // NULL stream in a thread without a context: the event GPU's primary context), which *context receives; or
  // nullptr when the version needs no wait: published without a stream, or its publisher's process is gone.
  // When this process published the version, *local keeps its event alive: hold it while using *event.
  int event_for(wb_snapshot *snapshot, void *stream, CUevent *event, CUcontext *context,
                std::shared_ptr<LocalEvent> *local);

 private:
  struct Owned {
    CUcontext context = nullptr;
    std::vector<std::shared_ptr<LocalEvent>> events;  // by ring slot
  };
  struct Opened {
    uint32_t epoch = 0;
    CUcontext context = nullptr;
    std::vector<CUevent> events;  // by ring slot, opened on first use
  };
  int create(wb_topic *topic, CUcontext context, Owned *out);
  void retire(uint32_t topic_slot, Owned &owned);
  void close(Opened &opened);

  const shm::Segment &seg_;
  uint32_t client_id_;  // the client slot whose events these are
  std::mutex mutex_;
  std::unordered_map<uint32_t, Owned> owned_;    // by topic slot
  std::map<std::pair<uint32_t, CUcontext>, Opened> opened_;  // by topic slot and context
};

}  // namespace wb::cuda
