// The client's CUDA state, made on first use, and the core library's hooks into it (hooks.hpp).
#include "client_state.hpp"

#include <new>

#include "client.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "hooks.hpp"
#include "topic.hpp"

namespace wb::cuda {

namespace {

// Whether any snapshot of this client reads the topic: its imports must stay open while one does.
bool topic_pinned(void *context, uint32_t topic_slot) {
  auto *client = static_cast<wb_client *>(context);
  std::lock_guard lock(client->topics_mutex);
  for (wb_topic *topic : client->topics) {
    if (topic->slot != topic_slot) continue;
    std::lock_guard handles(topic->handles_mutex);
    if (!topic->snapshots.empty() || !topic->arms.empty()) return true;  // an arm's copies may be on a stream
  }
  return false;
}

}  // namespace

int client_state(wb_client *client, ClientState **out) {
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  if (state == nullptr) {
    const Driver *d = nullptr;
    int rc = driver(&d);
    if (rc != WB_OK) return rc;
    std::lock_guard lock(client->cuda_mutex);
    state = client->cuda.load(std::memory_order_acquire);
    if (state == nullptr) {
      PinCheck pins{topic_pinned, client};
      state = new (std::nothrow) ClientState(client->connection, client->seg, client->id, pins);
      if (state == nullptr) return fail(WB_E_NOMEM, "out of memory");
      client->cuda.store(state, std::memory_order_release);
    }
  }
  *out = state;
  return WB_OK;
}

int import_base(wb_client *client, uint32_t allocation, char **base) {
  ClientState *state = nullptr;
  int rc = client_state(client, &state);
  if (rc != WB_OK) return rc;
  return state->imports.base(allocation, base);
}

void sweep(wb_client *client) {
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  if (state != nullptr) state->imports.sweep();
}

std::vector<uint32_t> imported_allocations(wb_client *client) {
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  return state != nullptr ? state->imports.open_allocations() : std::vector<uint32_t>{};
}

void export_again(wb_client *client) {
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  if (state != nullptr) state->exports.export_again();
}

void finish_published(wb_client *client) {
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  if (state != nullptr) state->events.finish_published();
}

void write_arm_word(wb_client *client, void *stream, std::atomic<uint64_t> &word, uint64_t token) {
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  if (state != nullptr) {
    state->events.write_arm_word(stream, word, token);
    return;
  }
  word.store(token, std::memory_order_release);  // not reached: a publish on a stream made the state first
}

bool finish_gpu_arm(wb_client *client, GpuArm *arm) {
  std::unique_ptr<GpuArm> owned(arm);
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  return state != nullptr && state->gpu_arms.finish(std::move(owned));
}

bool withdraw_gpu_arm(wb_client *client, GpuArm *arm) {
  std::unique_ptr<GpuArm> owned(arm);
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  bool withdrawn = state != nullptr && state->gpu_arms.withdraw(&owned);
  owned.release();  // kept (claimed): still the caller's
  return withdrawn;
}

void drop_gpu_arm(wb_client *client, GpuArm *arm) {
  std::unique_ptr<GpuArm> owned(arm);
  ClientState *state = client->cuda.load(std::memory_order_acquire);
  if (owned != nullptr && state != nullptr) state->gpu_arms.drop(std::move(owned));
}

void close_client(wb_client *client) { delete client->cuda.exchange(nullptr); }

}  // namespace wb::cuda
