// GPU ordering between processes. A publish on a stream writes the version into its ring slot's GPU word
// (layout.hpp: Segment::gpu_word) with cuStreamWriteValue64 once the stream's work before it is done, and a
// reader's stream waits until the word reaches the version (cuStreamWaitValue64): no interprocess event, so
// neither side pays for one. The word table is registered with the driver once per client (cuMemHostRegister)
// and its device address asked once per context. A reader skips the wait when the word is there already, and
// waits on the host instead of its stream when the version's publisher is its own process (a stream waiting on
// another stream of one context may be queued behind it) or its device lacks 64-bit stream memory operations.
// A publisher's detach waits for its words; the broker writes the words of a publisher that died.
//
// Where the driver cannot (no 64-bit stream memory operations, the table cannot be registered, or
// WEIGHTBUS_GPU_ORDER=event), interprocess events do it: a publisher owns one per ring slot of each topic it
// publishes on a stream, created in that stream's context on first use, their handles stored in the version
// records. Publishing version v records slot v % ring_slots's event on the stream; a reader waits on it. A
// later record for v + ring_slots only makes it wait longer, never shorter (so does a later word). Readers
// open each event once per context they wait in (an imported event must be opened in the waiting stream's
// context: the driver crashes on a wait across devices) and keep it until the publisher's set changes
// (Topic::event_epoch) or they detach. An IPC event handle cannot be opened in the process that created it:
// readers in the publisher's own process wait on the publisher's event itself, which stays alive while they
// use it (LocalEvent).
#pragma once

#include <cuda.h>

#include <atomic>
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
  Events(const shm::Segment &seg, uint32_t client_id);
  Events(const Events &) = delete;
  Events &operator=(const Events &) = delete;
  // Publisher: waits for the work its words and events track (a word at most 10 s: past that, the broker
  // writes it once this process is gone), retires the events from the segment, destroys them, unregisters
  // the word table. Reader: destroys the events it opened.
  ~Events();

  // Orders the update's version after the work on stream: writes its GPU word there (*by_word true) or, where
  // words cannot be used, records its slot's event.
  int record(wb_update *update, void *stream, bool *by_word);

  // A claimed GPU arm's token, written into its word from stream after the work before it (hooks.hpp's
  // write_arm_word): by the stream where it can, else stored once the stream is done. The error is the stream's
  // (the word is stored all the same).
  int write_arm_word(void *stream, std::atomic<uint64_t> &word, uint64_t token);

  // The device address in context of a word of the GPU word pages (a GPU word or an arm slot's), 0 where stream
  // memory operations cannot use it there.
  int device_address(CUcontext context, const std::atomic<uint64_t> &word, CUdeviceptr *address);

  // Waits, at most 10 s, until the words of the versions this client published are written (hooks.hpp).
  void finish_published();

  // Makes stream wait for the GPU work that wrote the snapshot's version (wb_snapshot_wait_stream).
  int order_stream(wb_snapshot *snapshot, void *stream);

  // Waits on the host for that work, at most timeout_ms (negative: no limit) (wb_snapshot_synchronize).
  int synchronize(wb_snapshot *snapshot, int64_t timeout_ms);

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
  // The event a reader of the snapshot must wait on, opened in the context of stream (see stream_context; a
  // NULL stream in a thread without a context: the event GPU's primary context), which *context receives; or
  // nullptr when the version needs no wait: published without a stream, or its publisher's process is gone.
  // When this process published the version, *local keeps its event alive: hold it while using *event.
  int event_for(wb_snapshot *snapshot, void *stream, CUevent *event, CUcontext *context,
                std::shared_ptr<LocalEvent> *local);
  // The device address of the word table in context, 0 where stream memory operations cannot use it. Under
  // mutex_.
  int words_base(CUcontext context, CUdeviceptr *base);
  // Writes value into word (of the GPU word pages) from stream in context (*written true), or leaves *written
  // false where stream memory operations cannot be used there. Under mutex_.
  int write_word(CUcontext context, void *stream, const std::atomic<uint64_t> &word, uint64_t value, bool *written);
  // Waits on the host until the word of the snapshot's version reaches it.
  int wait_word(wb_snapshot *snapshot, int64_t timeout_ms);

  const shm::Segment &seg_;
  uint32_t client_id_;  // the client slot whose events these are
  std::mutex mutex_;
  std::unordered_map<uint32_t, Owned> owned_;    // by topic slot
  std::map<std::pair<uint32_t, CUcontext>, Opened> opened_;  // by topic slot and context
  bool words_wanted_ = true;                 // WEIGHTBUS_GPU_ORDER is not "event"
  bool words_registered_ = false;            // the word table is registered with the driver (by this client)
  std::map<CUcontext, CUdeviceptr> words_;   // the table's device address per context; 0: not usable there
  std::unordered_map<uint32_t, uint64_t> words_written_;  // by topic slot: the last version ordered by a word
};

}  // namespace wb::cuda
