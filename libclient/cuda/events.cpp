#include "events.hpp"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "atomic_bytes.hpp"
#include "client.hpp"
#include "snapshot.hpp"
#include "topic.hpp"
#include "update.hpp"
#include "clock.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "scope_exit.hpp"

namespace wb::cuda {

namespace {

// A writer that died mid-write leaves the epoch odd for good: readers give up after this many looks.
constexpr int kSeqlockTries = 10000;

// What a reader needs of the topic's events, copied under the seqlock.
struct EventSet {
  uint32_t epoch = 0;
  uint32_t owner = 0;
  uint32_t owner_generation = 0;
  uint8_t device_uuid[16] = {};
  CUipcEventHandle handle{};
};

bool read_event_set(const shm::Segment &seg, uint32_t topic_slot, uint64_t version, EventSet *out) {
  const shm::Topic &entry = seg.topic(topic_slot);
  for (int i = 0; i < kSeqlockTries; ++i) {
    uint32_t e1 = entry.event_epoch.load(std::memory_order_acquire);
    if (e1 == 0) return false;
    if (e1 & 1) {
      sched_yield();
      continue;
    }
    // Acquire loads: the epoch's re-check below cannot move before any of them.
    out->epoch = e1;
    out->owner = entry.event_owner.load(std::memory_order_acquire);
    out->owner_generation = entry.event_owner_generation.load(std::memory_order_acquire);
    load_bytes(out->device_uuid, entry.event_device_uuid, sizeof(out->device_uuid));
    load_bytes(out->handle.reserved, seg.record(topic_slot, version).event_handle, sizeof(out->handle.reserved));
    if (entry.event_epoch.load(std::memory_order_relaxed) == e1) return true;
  }
  return false;
}

bool owner_alive(const shm::Segment &seg, const EventSet &set) {
  if (set.owner == 0 || set.owner > seg.caps().max_clients) return false;
  const shm::ClientSlot &slot = seg.client(set.owner - 1);
  return slot.state.load(std::memory_order_acquire) == uint32_t(shm::ClientState::kLive) &&
         slot.generation == set.owner_generation;
}

// Enters the topic's event seqlock as its only writer (odd epoch). False if another writer is in it.
bool enter_writer(shm::Topic &entry, uint32_t *epoch) {
  uint32_t e = entry.event_epoch.load(std::memory_order_acquire);
  if ((e & 1) || !entry.event_epoch.compare_exchange_strong(e, e | 1, std::memory_order_acq_rel)) return false;
  *epoch = e | 1;  // the writer's stores are release stores: a reader that sees one sees the odd epoch
  return true;
}

void leave_writer(shm::Topic &entry, uint32_t epoch) { entry.event_epoch.store(epoch + 1, std::memory_order_release); }

// The events this process created, by IPC handle, for its own readers (see LocalEvent).
std::mutex local_mutex;
std::map<std::string, std::weak_ptr<LocalEvent>> local_events;

std::string handle_key(const CUipcEventHandle &handle) { return std::string(handle.reserved, sizeof(handle.reserved)); }

std::shared_ptr<LocalEvent> find_local(const CUipcEventHandle &handle) {
  std::lock_guard lock(local_mutex);
  auto found = local_events.find(handle_key(handle));
  return found == local_events.end() ? nullptr : found->second.lock();
}

int fallback_ordinal(wb_update *update, int *ordinal) {
  const shm::Segment &seg = update->topic->client->seg;
  for (uint32_t i : update->changed) {
    const shm::Tensor &e = seg.tensor(i);
    if (e.device_type == WB_DEVICE_CUDA) return ordinal_of(seg.allocation(e.allocation).device_uuid, ordinal);
  }
  *ordinal = 0;
  return WB_OK;
}

// Whether a GPU word shows version v done: the cyclic >= that cuStreamWaitValue64 applies.
bool word_reached(uint64_t word, uint64_t v) { return int64_t(word - v) >= 0; }

// The device address of word, given the word table's device address.
CUdeviceptr word_address(CUdeviceptr table, const shm::Segment &seg, const std::atomic<uint64_t> &word) {
  return table + CUdeviceptr(reinterpret_cast<const char *>(&word) - reinterpret_cast<const char *>(seg.gpu_words()));
}

// Polls ready() until it returns anything but WB_E_BUSY, sleeping longer as the wait goes on (1 us .. 100 us);
// WB_E_TIMEOUT after timeout_ms (negative: no limit).
template <typename Ready>
int poll(Ready ready, int64_t timeout_ms, uint64_t version) {
  Deadline deadline(timeout_ms);
  for (int64_t pause_ns = 1000;; pause_ns = std::min<int64_t>(pause_ns * 2, 100000)) {
    int rc = ready();
    if (rc != WB_E_BUSY) return rc;
    if (timeout_ms >= 0 && deadline.expired()) {
      return fail(WB_E_TIMEOUT, "version %llu's GPU work did not finish within %lld ms", (unsigned long long)version,
                  (long long)timeout_ms);
    }
    timespec pause{0, long(pause_ns)};
    nanosleep(&pause, nullptr);
  }
}

}  // namespace

LocalEvent::~LocalEvent() {
  const Driver *d = nullptr;
  ContextGuard guard;
  if (event != nullptr && driver(&d) == WB_OK && guard.push(context) == WB_OK) d->cuEventDestroy(event);
}

Events::Events(const shm::Segment &seg, uint32_t client_id) : seg_(seg), client_id_(client_id) {
  const char *order = getenv("WEIGHTBUS_GPU_ORDER");
  words_wanted_ = order == nullptr || strcmp(order, "event") != 0;
}

void Events::finish_published() {
  std::lock_guard lock(mutex_);
  Deadline deadline(10000);
  for (auto &[topic, version] : words_written_) {
    const std::atomic<uint64_t> &word = seg_.gpu_word(topic, version);
    uint64_t v = version;
    poll([&] { return word_reached(word.load(std::memory_order_acquire), v) ? WB_OK : WB_E_BUSY; },
         std::max<int64_t>(0, deadline.remaining_ms()), v);
  }
  words_written_.clear();
}

Events::~Events() {
  finish_published();
  for (auto &[topic, owned] : owned_) retire(topic, owned);
  for (auto &[topic, opened] : opened_) close(opened);
  const Driver *d = nullptr;
  ContextGuard guard;
  if (words_registered_ && driver(&d) == WB_OK && guard.push(words_.begin()->first) == WB_OK) {
    d->cuMemHostUnregister(seg_.gpu_words());
  }
}

int Events::words_base(CUcontext context, CUdeviceptr *base) {
  *base = 0;
  auto found = words_.find(context);
  if (found != words_.end()) {
    *base = found->second;
    return WB_OK;
  }
  const Driver *d = nullptr;
  ContextGuard guard;
  int rc = driver(&d);
  if (rc == WB_OK) rc = guard.push(context);
  CUdevice device = 0;
  if (rc == WB_OK) rc = check(d->cuCtxGetDevice(&device), "cuCtxGetDevice");
  int usable = 0;
  if (rc == WB_OK) {
    rc = check(d->cuDeviceGetAttribute(&usable, CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS, device),
               "cuDeviceGetAttribute");
  }
  if (rc != WB_OK) return rc;
  words_.try_emplace(context, 0);  // first: a failure below leaves this context on events
  if (!usable || !words_wanted_) return WB_OK;
  if (!words_registered_) {
    // A refusal (a sandbox, a driver without host registration) is no error: events do the ordering.
    CUresult r = d->cuMemHostRegister(seg_.gpu_words(), seg_.gpu_words_size(),
                                      CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP);
    if (r != CUDA_SUCCESS) {
      words_wanted_ = false;
      return WB_OK;
    }
    words_registered_ = true;
  }
  CUdeviceptr address = 0;
  if (d->cuMemHostGetDevicePointer(&address, seg_.gpu_words(), 0) != CUDA_SUCCESS) return WB_OK;
  words_[context] = *base = address;
  return WB_OK;
}

int Events::write_word(CUcontext context, void *stream, const std::atomic<uint64_t> &word, uint64_t value,
                       bool *written) {
  *written = false;
  const Driver *d = nullptr;
  CUdeviceptr words = 0;
  int rc = driver(&d);
  if (rc != WB_OK || (rc = words_base(context, &words)) != WB_OK || words == 0) return rc;
  ContextGuard guard;
  if ((rc = guard.push(context)) != WB_OK) return rc;
  // Flags 0: a memory fence before the write, so that the bytes written before it are visible once the word is.
  rc = check(d->cuStreamWriteValue64(static_cast<CUstream>(stream), word_address(words, seg_, word), value, 0),
             "cuStreamWriteValue64");
  *written = rc == WB_OK;
  return rc;
}

int Events::device_address(CUcontext context, const std::atomic<uint64_t> &word, CUdeviceptr *address) {
  std::lock_guard lock(mutex_);
  CUdeviceptr words = 0;
  int rc = words_base(context, &words);
  *address = rc == WB_OK && words != 0 ? word_address(words, seg_, word) : 0;
  return rc;
}

int Events::write_arm_word(void *stream, std::atomic<uint64_t> &word, uint64_t token) {
  CUcontext context = nullptr;
  bool written = false;
  int rc = stream_context(stream, 0, &context);
  if (rc == WB_OK) {
    std::lock_guard lock(mutex_);
    rc = write_word(context, stream, word, token, &written);
  }
  if (written) return WB_OK;
  // Where the stream cannot write it: once the stream's work is done, the host does; and on any error all the
  // same, since the arm's reader waits for it.
  const Driver *d = nullptr;
  ContextGuard guard;
  if (rc == WB_OK) rc = driver(&d);
  if (rc == WB_OK) rc = guard.push(context);
  if (rc == WB_OK) rc = check(d->cuStreamSynchronize(static_cast<CUstream>(stream)), "cuStreamSynchronize");
  word.store(token, std::memory_order_release);
  return rc;
}

int Events::create(wb_topic *topic, CUcontext context, Owned *out) {
  const Driver *d = nullptr;
  ContextGuard guard;
  int ordinal = 0;
  int rc = driver(&d);
  if (rc == WB_OK) rc = context_ordinal(context, &ordinal);
  if (rc == WB_OK) rc = guard.push(context);
  if (rc != WB_OK) return rc;
  const shm::Segment &seg = seg_;
  uint32_t slots = seg.caps().ring_slots;
  // Everything that allocates comes before the seqlock is entered: a writer must leave it.
  std::vector<CUipcEventHandle> handles(slots);
  out->context = context;
  out->events.reserve(slots);
  for (uint32_t s = 0; s < slots && rc == WB_OK; ++s) {
    auto local = std::make_shared<LocalEvent>(nullptr, context);  // owns the event from its creation on
    rc = check(d->cuEventCreate(&local->event, CU_EVENT_INTERPROCESS | CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    if (rc != WB_OK) break;
    out->events.push_back(local);
    rc = check(d->cuIpcGetEventHandle(&handles[s], local->event), "cuIpcGetEventHandle");
  }
  if (rc == WB_OK) {
    std::lock_guard lock(local_mutex);
    for (uint32_t s = 0; s < slots; ++s) local_events[handle_key(handles[s])] = out->events[s];
  }
  shm::Topic &entry = *topic->entry;
  uint32_t epoch = 0;
  if (rc == WB_OK && !enter_writer(entry, &epoch)) {
    rc = fail(WB_E_STATE, "topic '%s': another process is replacing its GPU events", entry.name);
  }
  if (rc != WB_OK) {
    out->events.clear();  // their entries in local_events expire with them
    return rc;
  }
  uint8_t uuid[16];
  uuid_of(ordinal, uuid);
  entry.event_owner.store(client_id_ + 1, std::memory_order_release);
  entry.event_owner_generation.store(seg.client(client_id_).generation, std::memory_order_release);
  store_bytes(entry.event_device_uuid, uuid, sizeof(uuid));
  for (uint32_t s = 0; s < slots; ++s) {
    store_bytes(seg.record(topic->slot, s).event_handle, handles[s].reserved, sizeof(handles[s].reserved));
  }
  leave_writer(entry, epoch);
  return WB_OK;
}

int synchronize_for_rank(wb_update *update, void *stream) {
  const Driver *d = nullptr;
  int ordinal = 0;
  CUcontext context = nullptr;
  int rc = driver(&d);
  if (rc == WB_OK) rc = fallback_ordinal(update, &ordinal);
  if (rc == WB_OK) rc = stream_context(stream, ordinal, &context);
  ContextGuard guard;
  if (rc == WB_OK) rc = guard.push(context);
  if (rc != WB_OK) return rc;
  return check(d->cuStreamSynchronize(static_cast<CUstream>(stream)), "cuStreamSynchronize");
}

int Events::record(wb_update *update, void *stream, bool *by_word) {
  *by_word = false;
  wb_topic *topic = update->topic;
  const Driver *d = nullptr;
  int ordinal = 0;
  CUcontext context = nullptr;
  int rc = driver(&d);
  if (rc == WB_OK) rc = fallback_ordinal(update, &ordinal);
  if (rc == WB_OK) rc = stream_context(stream, ordinal, &context);
  if (rc != WB_OK) return rc;
  std::lock_guard lock(mutex_);
  if ((rc = write_word(context, stream, seg_.gpu_word(topic->slot, update->version), update->version, by_word)) !=
      WB_OK) {
    return rc;
  }
  if (*by_word) {
    words_written_[topic->slot] = update->version;
    return WB_OK;
  }
  auto found = owned_.find(topic->slot);
  if (found == owned_.end()) {
    // The entry first: once the events are in the segment, keeping them cannot fail.
    found = owned_.try_emplace(topic->slot).first;
    ScopeExit forget([this, found] { owned_.erase(found); });
    if ((rc = create(topic, context, &found->second)) != WB_OK) return rc;
    forget.release();
  }
  if (found->second.context != context) {
    return fail(WB_E_INVAL,
                "topic '%s': publish on streams of one CUDA context: its events live in the context "
                "of its first publish on a stream",
                topic->entry->name);
  }
  CUevent event = found->second.events[update->version % found->second.events.size()]->event;
  ContextGuard guard;
  if ((rc = guard.push(context)) != WB_OK) return rc;
  return check(d->cuEventRecord(event, static_cast<CUstream>(stream)), "cuEventRecord");
}

void Events::retire(uint32_t topic_slot, Owned &owned) {
  const Driver *d = nullptr;
  ContextGuard guard;
  if (driver(&d) != WB_OK || guard.push(owned.context) != WB_OK) return;
  for (auto &local : owned.events) d->cuEventSynchronize(local->event);  // readers waiting on them may go on
  shm::Topic &entry = seg_.topic(topic_slot);
  uint32_t epoch = 0;
  // Only while the set is still ours: a publisher that took the topic over has replaced it.
  uint32_t generation = seg_.client(client_id_).generation;
  auto ours = [&] { return entry.event_owner == client_id_ + 1 && entry.event_owner_generation == generation; };
  if (ours() && enter_writer(entry, &epoch)) {
    if (ours()) entry.event_owner.store(0, std::memory_order_release);
    leave_writer(entry, epoch);
  }
  {
    std::lock_guard lock(local_mutex);
    std::erase_if(local_events, [&](const auto &weak) {
      auto event = weak.second.lock();
      return !event || std::find(owned.events.begin(), owned.events.end(), event) != owned.events.end();
    });
  }
  owned.events.clear();  // each is destroyed when no reader of this process uses it any more
}

void Events::close(Opened &opened) {
  const Driver *d = nullptr;
  ContextGuard guard;
  if (driver(&d) != WB_OK || guard.push(opened.context) != WB_OK) return;
  for (CUevent event : opened.events) {
    if (event != nullptr) d->cuEventDestroy(event);
  }
  opened.events.clear();
}

int Events::wait_word(wb_snapshot *snapshot, int64_t timeout_ms) {
  const std::atomic<uint64_t> &word = seg_.gpu_word(snapshot->topic->slot, snapshot->version);
  uint64_t v = snapshot->version;
  return poll([&] { return word_reached(word.load(std::memory_order_acquire), v) ? WB_OK : WB_E_BUSY; },
              timeout_ms, v);
}

int Events::order_stream(wb_snapshot *snapshot, void *stream) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK || !(snapshot->record_flags & shm::kRecordOnStream)) return rc;
  if (snapshot->record_flags & shm::kRecordGpuWord) {
    const std::atomic<uint64_t> &word = seg_.gpu_word(snapshot->topic->slot, snapshot->version);
    if (word_reached(word.load(std::memory_order_acquire), snapshot->version)) return WB_OK;  // done already
    CUcontext context = nullptr;
    if (stream == nullptr && (rc = check(d->cuCtxGetCurrent(&context), "cuCtxGetCurrent")) != WB_OK) return rc;
    if (stream != nullptr && (rc = stream_context(stream, 0, &context)) != WB_OK) return rc;
    CUdeviceptr words = 0;
    bool ours = snapshot->topic->entry->publisher_pid.load(std::memory_order_acquire) == uint32_t(getpid());
    if (context != nullptr && !ours) {
      std::lock_guard lock(mutex_);
      if ((rc = words_base(context, &words)) != WB_OK) return rc;
    }
    if (words == 0) return wait_word(snapshot, -1);  // see the header: the host waits instead
    CUdeviceptr address = word_address(words, seg_, word);
    ContextGuard guard;
    if ((rc = guard.push(context)) != WB_OK) return rc;
    return check(d->cuStreamWaitValue64(static_cast<CUstream>(stream), address, snapshot->version,
                                        CU_STREAM_WAIT_VALUE_GEQ),
                 "cuStreamWaitValue64");
  }
  CUevent event = nullptr;
  CUcontext context = nullptr;
  std::shared_ptr<LocalEvent> local;
  if ((rc = event_for(snapshot, stream, &event, &context, &local)) != WB_OK || event == nullptr) return rc;
  ContextGuard guard;
  if ((rc = guard.push(context)) != WB_OK) return rc;
  return check(d->cuStreamWaitEvent(static_cast<CUstream>(stream), event, 0), "cuStreamWaitEvent");
}

int Events::synchronize(wb_snapshot *snapshot, int64_t timeout_ms) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK || !(snapshot->record_flags & shm::kRecordOnStream)) return rc;
  if (snapshot->record_flags & shm::kRecordGpuWord) return wait_word(snapshot, timeout_ms);
  CUevent event = nullptr;
  CUcontext context = nullptr;  // the host waits from any context: the thread's, else the event GPU's
  std::shared_ptr<LocalEvent> local;
  if ((rc = event_for(snapshot, nullptr, &event, &context, &local)) != WB_OK || event == nullptr) return rc;
  if (timeout_ms < 0) return check(d->cuEventSynchronize(event), "cuEventSynchronize");
  // cuEventSynchronize takes no timeout: poll.
  return poll(
      [&] {
        CUresult r = d->cuEventQuery(event);
        return r == CUDA_ERROR_NOT_READY ? WB_E_BUSY : check(r, "cuEventQuery");
      },
      timeout_ms, snapshot->version);
}

int Events::event_for(wb_snapshot *snapshot, void *stream, CUevent *event, CUcontext *context,
                      std::shared_ptr<LocalEvent> *local) {
  *event = nullptr;
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK || !(snapshot->record_flags & shm::kRecordOnStream)) return rc;
  wb_topic *topic = snapshot->topic;
  const shm::Segment &seg = seg_;
  EventSet set;
  if (!read_event_set(seg, topic->slot, snapshot->version, &set) || !owner_alive(seg, set)) return WB_OK;
  int ordinal = 0;  // the event's GPU, for a NULL stream in a thread without a context
  if ((rc = ordinal_of(set.device_uuid, &ordinal)) != WB_OK && rc != WB_E_NOT_FOUND) return rc;
  if ((rc = stream_context(stream, ordinal, context)) != WB_OK) return rc;
  if ((*local = find_local(set.handle)) != nullptr) {
    *event = (*local)->event;
    return WB_OK;
  }
  std::lock_guard lock(mutex_);
  Opened &opened = opened_[{topic->slot, *context}];
  if (opened.epoch != set.epoch) {
    close(opened);
    opened.events.assign(seg.caps().ring_slots, nullptr);  // first: running out of memory keeps the old epoch
    opened.epoch = set.epoch;
    opened.context = *context;
  }
  CUevent &slot = opened.events[snapshot->version % opened.events.size()];
  if (slot == nullptr) {
    ContextGuard guard;
    if ((rc = guard.push(opened.context)) != WB_OK) return rc;
    if ((rc = check(d->cuIpcOpenEventHandle(&slot, set.handle), "cuIpcOpenEventHandle")) != WB_OK) return rc;
  }
  *event = slot;
  return WB_OK;
}

}  // namespace wb::cuda
