// Arms (wb_plan_arm, wb_armed_wait, wb_armed_release): a plan's run of the first version after the one a reader
// had, leased before that version is published, so that once it is nothing is left to do but the copies.
//
// The arm's lease of latest + 1 is an ordinary lease word. Against the floor it is Dekker's handshake of any
// acquire (lease.hpp): stored, then the floor loaded; a floor above it means the version was published and a
// later one begun meanwhile, and the arm moves on. Every begin after that store sees the lease: an R = 1 begin
// of the armed version is not kept waiting by it (core/replica.hpp, leases_block), every later begin is, as by
// any lease; R >= 2 counts it once it is older than the latest. So from the moment the arm holds it, the version's
// bytes stay what its publish made them until the arm lets go, and the wait needs only `latest`, the record and
// the dirty count (tests/model/protocol.pml checks the protocol with a reader that arms).
#include "armed.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include "client.hpp"
#include "clock.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "plan.hpp"
#include "set_node.hpp"
#include "sleep.hpp"
#include "snapshot.hpp"
#include "topic.hpp"
#include "topic_state.hpp"

struct wb_armed {
  wb_plan *plan = nullptr;
  wb_topic *topic = nullptr;  // the plan's
  void *stream = nullptr;
  uint64_t after = 0;    // the caller's: the arm is for the first version after it
  uint64_t version = 0;  // leased in lease_slot
  uint32_t lease_slot = 0;
  // The copies enqueued on the stream behind a GPU arm (plan.hpp: arm_plan), or nullptr: copied once published.
  wb::cuda::GpuArm *gpu = nullptr;
  // When the GPU arm's hold runs out (monotonic ns; -1: none to keep): the wait withdraws it then.
  int64_t hold_until_ns = -1;
  // Made ahead, so that once the version is published nothing on the way to the copies can fail for memory.
  std::unique_ptr<wb_snapshot> snapshot;
  std::set<wb_snapshot *>::node_type snapshot_node;
};

namespace wb {

namespace {

// $WEIGHTBUS_GPU_ARMS (weightbus.h, "GPU arms"): how long a GPU arm may hold its stream, in *hold_ns; 0: none is
// made. "on" holds up to 100 ms: far longer than a version takes from the arm to its publish where the reader arms
// just before (benchmarks), and short enough that what the hold makes wait (the process's device-wide waits)
// only stutters.
int gpu_arm_hold(int64_t *hold_ns) {
  constexpr long long kOnMs = 100, kMaxMs = 3600000;
  *hold_ns = 0;
  const char *setting = getenv("WEIGHTBUS_GPU_ARMS");
  if (setting == nullptr || *setting == '\0' || strcmp(setting, "off") == 0) return WB_OK;
  long long ms = kOnMs;
  if (strcmp(setting, "on") != 0) {
    char *end = nullptr;
    errno = 0;
    ms = strtoll(setting, &end, 10);
    if (setting[0] < '0' || setting[0] > '9' || errno != 0 || *end != '\0' || ms < 1 || ms > kMaxMs) {
      return fail(WB_E_INVAL,
                  "WEIGHTBUS_GPU_ARMS='%s': give on, off, or how long a GPU arm may hold its stream in milliseconds "
                  "(1 to %lld)",
                  setting, kMaxMs);
    }
  }
  *hold_ns = int64_t(ms) * 1000000;
  return WB_OK;
}

// The sooner of two waits in ns (-1: forever).
int64_t sooner(int64_t a_ns, int64_t b_ns) {
  if (a_ns < 0) return b_ns;
  if (b_ns < 0) return a_ns;
  return std::min(a_ns, b_ns);
}

// Leases, in the arm's slot, the first version after armed->after that it can have: the latest if it is newer
// and can be read now, else latest + 1, whether or not a publisher is writing it yet.
int lease_next(wb_armed *armed) {
  wb_topic *topic = armed->topic;
  shm::Topic &entry = *topic->entry;
  LeaseSlots &leases = topic->client->leases;
  bool latest_readable = true;
  for (;;) {
    uint64_t latest = entry.latest.load(std::memory_order_seq_cst);
    if (latest < armed->after) {
      leases.clear(entry, armed->lease_slot);
      return fail(WB_E_INVAL, "topic '%s': after=%llu is beyond its latest version, %llu", entry.name,
                  (unsigned long long)armed->after, (unsigned long long)latest);
    }
    bool published = latest_readable && latest > armed->after;
    if (!published && latest >= WB_VERSION_MAX) {
      leases.clear(entry, armed->lease_slot);
      return fail(WB_E_INVAL, "topic '%s' reached the last version number: no version can follow %llu", entry.name,
                  (unsigned long long)latest);
    }
    uint64_t v = published ? latest : latest + 1;
    leases.hold(armed->lease_slot, topic->slot, v);
    if (int rc = check_topic_live(topic); rc != WB_OK) {
      leases.clear(entry, armed->lease_slot);
      return rc;
    }
    uint64_t floor = entry.floor.load(std::memory_order_seq_cst);
    bool dirty = entry.dirty_tensors.load(std::memory_order_seq_cst) > 0;
    if (published ? v >= floor && !dirty : v >= floor) {
      armed->version = v;
      return WB_OK;
    }
    // The latest cannot be read now (an R = 1 update writes over it, or it is dirty): arm the one after it. Or
    // the armed one was published and a later one begun meanwhile: look again.
    leases.clear(entry, armed->lease_slot);
    latest_readable = !published;
  }
}

// Withdraws the GPU half of the arm, if any (waiting for its copies if a publisher claimed it first).
void drop_gpu(wb_armed *armed) {
  cuda::drop_gpu_arm(armed->topic->client, armed->gpu);
  armed->gpu = nullptr;
}

// Drops the arm's lease and frees it.
void withdraw(wb_armed *armed) {
  wb_topic *topic = armed->topic;
  drop_gpu(armed);  // first: copies a publisher let go read under the lease
  topic->client->leases.drop(*topic->entry, armed->lease_slot);
  {
    std::lock_guard lock(topic->handles_mutex);
    topic->arms.erase(armed);
  }
  delete armed;
}

// The armed version, published: its snapshot, which takes the arm's lease over, counted among the topic's
// snapshots, and whether its copies are on the stream already (*enqueued). Frees the arm.
wb_snapshot *claim(wb_armed *armed, bool *enqueued) {
  wb_topic *topic = armed->topic;
  *enqueued = armed->gpu != nullptr && cuda::finish_gpu_arm(topic->client, armed->gpu);
  armed->gpu = nullptr;
  wb_snapshot *snapshot = armed->snapshot.release();
  snapshot->topic = topic;
  snapshot->version = armed->version;
  snapshot->lease_slot = armed->lease_slot;
  {
    std::lock_guard lock(topic->handles_mutex);
    topic->arms.erase(armed);
    topic->snapshots.insert(std::move(armed->snapshot_node));
  }
  delete armed;
  return snapshot;
}

// Waits until the armed version is published and readable: WB_OK with *out its snapshot (the arm freed) and
// *enqueued (claim's), WB_E_TIMEOUT (the arm kept), else an error (the arm withdrawn).
int await_version(wb_armed *armed, int64_t timeout_ms, wb_snapshot **out, bool *enqueued) {
  wb_topic *topic = armed->topic;
  shm::Topic &entry = *topic->entry;
  const shm::Segment &seg = topic->client->seg;
  Deadline deadline(timeout_ms);
  for (;;) {
    uint32_t seq = entry.version_seq.load(std::memory_order_seq_cst);
    int rc = check_topic_live(topic);
    uint64_t latest = entry.latest.load(std::memory_order_seq_cst);
    if (rc == WB_OK && latest >= armed->version) {
      if (entry.dirty_tensors.load(std::memory_order_seq_cst) > 0) {
        rc = dirty_error(seg, entry);
      } else if (read_record(seg, topic->slot, armed->version, armed->snapshot.get())) {
        *out = claim(armed, enqueued);
        return WB_OK;
      } else {  // never published (skipped), or its record is overwritten: the first after `after` is a later one
        drop_gpu(armed);
        topic->client->leases.clear(entry, armed->lease_slot);
        if ((rc = lease_next(armed)) == WB_OK) continue;
      }
    }
    if (rc != WB_OK) {
      withdraw(armed);
      return rc;
    }
    // Not published within the GPU arm's hold: withdrawn, its stream goes on and the copies are the wait's. Or a
    // publisher claimed it meanwhile: its version is out, and the next look finds it.
    int64_t hold_ns = armed->hold_until_ns < 0 ? -1 : std::max<int64_t>(0, armed->hold_until_ns - monotonic_ns());
    if (hold_ns == 0) {
      if (cuda::withdraw_gpu_arm(topic->client, armed->gpu)) armed->gpu = nullptr;
      armed->hold_until_ns = -1;
      continue;
    }
    // A reader blocked here still drops revoked CUDA imports, once per slice; not while its stream is held, as
    // letting an import go may wait for the device, and so for the hold.
    if (armed->gpu == nullptr) cuda::sweep(topic->client);
    rc = sleep_on(topic->client->connection, &entry.version_seq, &entry.version_waiters, seq,
                  sooner(deadline.remaining_ns(), hold_ns));
    if (rc == WB_E_TIMEOUT && !deadline.expired()) continue;  // the hold ran out first
    if (rc == WB_E_TIMEOUT) {
      return fail(WB_E_TIMEOUT, "topic '%s': armed version %llu not published within %lld ms (latest %llu)%s",
                  entry.name, (unsigned long long)armed->version, (long long)timeout_ms,
                  (unsigned long long)entry.latest.load(), topic_state::waiting_for(seg, entry).c_str());
    }
    if (rc != WB_OK) {
      withdraw(armed);
      return rc;
    }
  }
}

}  // namespace

void withdraw_arms(wb_topic *topic) {
  for (;;) {
    wb_armed *armed;
    {
      std::lock_guard lock(topic->handles_mutex);
      if (topic->arms.empty()) return;
      armed = *topic->arms.begin();
    }
    withdraw(armed);
  }
}

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_plan_arm(wb_plan *plan, uint64_t after, void *stream, wb_armed **out) try {
  if (plan == nullptr || out == nullptr) return fail(WB_E_INVAL, "plan or out is NULL");
  *out = nullptr;
  wb_topic *topic = plan_topic(plan);
  int64_t hold_ns = 0;
  if (int rc = gpu_arm_hold(&hold_ns); rc != WB_OK) return rc;
  // Everything is made first: once a lease word is taken, nothing may fail for want of memory.
  auto armed = std::make_unique<wb_armed>();
  armed->plan = plan;
  armed->topic = topic;
  armed->stream = stream;
  armed->after = after;
  armed->snapshot = std::make_unique<wb_snapshot>();
  armed->snapshot->metadata.reserve(WB_METADATA_MAX);
  armed->snapshot_node = set_node(armed->snapshot.get());
  auto node = set_node(armed.get());
  cuda::sweep(topic->client);  // drop revoked CUDA imports first, so that their exporters stop waiting
  if (int rc = topic->client->leases.take(&armed->lease_slot); rc != WB_OK) return rc;
  if (int rc = lease_next(armed.get()); rc != WB_OK) {
    topic->client->leases.drop(*topic->entry, armed->lease_slot);
    return rc;
  }
  {
    std::lock_guard lock(topic->handles_mutex);
    topic->arms.insert(std::move(node));
  }
  wb_armed *made = armed.release();
  // Not published yet: with GPU arms on, its copies may go on the stream now, to start when it is (a failure,
  // even for memory, leaves them to the wait: the arm is made already).
  try {
    if (hold_ns > 0 && topic->entry->latest.load(std::memory_order_seq_cst) < made->version &&
        arm_plan(plan, made->version, stream, &made->gpu) != WB_OK) {
      made->gpu = nullptr;
    }
  } catch (...) {
    made->gpu = nullptr;
  }
  if (made->gpu != nullptr) made->hold_until_ns = monotonic_ns() + hold_ns;
  count_arm(plan, made->gpu != nullptr);
  *out = made;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_armed_wait(wb_armed *armed, int64_t timeout_ms, wb_snapshot **snapshot) try {
  if (armed == nullptr || snapshot == nullptr) return fail(WB_E_INVAL, "armed or snapshot is NULL");
  *snapshot = nullptr;
  wb_plan *plan = armed->plan;
  void *stream = armed->stream;
  wb_snapshot *leased = nullptr;
  bool enqueued = false;
  int rc = await_version(armed, timeout_ms, &leased, &enqueued);
  if (rc != WB_OK) return rc;
  if (enqueued) count_claimed(plan);
  if (!enqueued && (rc = wb_plan_run(plan, leased, stream)) != WB_OK) {
    std::string message = wb_last_error();
    wb_snapshot_release(leased);
    return fail(rc, "%s", message.c_str());
  }
  *snapshot = leased;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_armed_version(const wb_armed *armed, uint64_t *version) try {
  if (armed == nullptr || version == nullptr) return fail(WB_E_INVAL, "armed or version is NULL");
  *version = armed->version;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_armed_on_stream(const wb_armed *armed, int *on_stream) try {
  if (armed == nullptr || on_stream == nullptr) return fail(WB_E_INVAL, "armed or on_stream is NULL");
  *on_stream = armed->gpu != nullptr;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_armed_release(wb_armed *armed) try {
  if (armed != nullptr) withdraw(armed);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
