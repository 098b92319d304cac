// Attaching to a broker and detaching: wb_client's life. Detach is the top of the library's call graph: it
// releases every handle the client still holds (update.cpp, snapshot.cpp, topic.cpp), and none of those calls
// back into this file.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "armed.hpp"
#include "client.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "private_path.hpp"
#include "process_id.hpp"
#include "snapshot.hpp"
#include "struct_size.hpp"
#include "topic.hpp"
#include "update.hpp"

namespace wb {

namespace {

const char *default_client_name() { return program_invocation_short_name; }

int send_attach(wb_client *client, const char *name, Reply *reply) {
  std::vector<uint32_t> fields = shm::fingerprint_words();
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateAttachDirect(builder, shm::kLayoutVersion, &fields, process_id(), name);
  // Not through call(): a client that is not attached yet has no slot to resume if the broker dies now.
  return client->connection.send_recv(builder, proto::Body::Attach, body.Union(), reply);
}

int map_segment(wb_client *client, int fd) {
  int rc =
      private_path::check_object("the segment the broker sent", fd, geteuid(), private_path::kReceivedObjectAdvice);
  if (rc != WB_OK) return rc;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail_errno("fstat of the segment");
  void *base = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail_errno("mmap of the segment");
  client->segment_base = base;
  client->segment_size = uint64_t(st.st_size);
  client->segment_fd = dup(fd);
  rc = shm::validate_header(base, client->segment_size);
  if (rc != WB_OK) return rc;
  client->seg = shm::Segment(base);
  return WB_OK;
}

// What resuming with a successor broker redoes in CUDA (connection.hpp's ResumeHooks).
std::vector<uint32_t> imported_allocations(void *client) {
  return cuda::imported_allocations(static_cast<wb_client *>(client));
}
void export_again(void *client) { cuda::export_again(static_cast<wb_client *>(client)); }

// The connection's socket closes with it, last (delete).
void destroy(wb_client *client) {
  cuda::close_client(client);
  client->allocations.unmap_all();
  if (client->segment_base != nullptr) munmap(client->segment_base, client->segment_size);
  if (client->segment_fd >= 0) close(client->segment_fd);
  delete client;
}

// A client being attached: destroyed on every way out until attach hands it over. Closing its socket frees
// the slot the broker may have given it.
struct Destroy {
  void operator()(wb_client *client) const { destroy(client); }
};
using Attaching = std::unique_ptr<wb_client, Destroy>;

// The first topic of the client's set, or nullptr.
wb_topic *any_topic(wb_client *client) {
  std::lock_guard lock(client->topics_mutex);
  return client->topics.empty() ? nullptr : *client->topics.begin();
}

// The first snapshot of the topic, or nullptr.
wb_snapshot *any_snapshot(wb_topic *topic) {
  std::lock_guard lock(topic->handles_mutex);
  return topic->snapshots.empty() ? nullptr : *topic->snapshots.begin();
}

// Aborts the topic's update, withdraws its arms, drops its snapshots' leases and frees it, allocating nothing.
void forget_topic(wb_topic *topic) {
  wb_update *update;
  {
    std::lock_guard lock(topic->handles_mutex);
    update = topic->update;
  }
  if (update != nullptr) abort_update(update);
  withdraw_arms(topic);
  while (wb_snapshot *snapshot = any_snapshot(topic)) orphan_snapshot(snapshot);  // each leaves the set
  release_topic(topic);
}

}  // namespace

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_attach(const wb_attach_options *opts, wb_client **out) try {
  wb_attach_options defaults = WB_ATTACH_OPTIONS_INIT;
  if (out == nullptr) return fail(WB_E_INVAL, "out is NULL");
  *out = nullptr;
  if (opts == nullptr) opts = &defaults;
  int rc = check_struct_size(opts->struct_size, sizeof(wb_attach_options), "wb_attach_options");
  if (rc != WB_OK) return rc;
  char path[4096];
  if (opts->socket_path != nullptr) {
    if (snprintf(path, sizeof(path), "%s", opts->socket_path) >= int(sizeof(path))) {
      return fail(WB_E_INVAL, "socket path is too long");
    }
  } else if ((rc = wb_default_socket_path(opts->broker_name, path, sizeof(path))) != WB_OK) {
    return rc;
  }
  Attaching client(new wb_client);
  if ((rc = client->connection.connect(path, opts->timeout_ms)) != WB_OK) return rc;
  Reply reply;
  rc = send_attach(client.get(), opts->client_name ? opts->client_name : default_client_name(), &reply);
  if (rc == WB_OK && reply.fds.size() != 1) rc = fail(WB_E_PROTOCOL, "the broker attached without a segment");
  if (rc == WB_OK) rc = map_segment(client.get(), reply.fds[0]);
  if (rc == WB_OK && reply.value >= client->seg.caps().max_clients) {
    rc = fail(WB_E_PROTOCOL, "the broker gave client slot %llu", (unsigned long long)reply.value);
  }
  if (rc != WB_OK) return rc;
  client->id = uint32_t(reply.value);
  const shm::ClientSlot &slot = client->seg.client(client->id);
  client->connection.set_session(client->id, slot.generation, slot.name, client->segment_fd,
                                 ResumeHooks{imported_allocations, export_again, client.get()});
  client->crash_seam = crash_seam_from_env();
  uint32_t leases = client->seg.caps().leases_per_client;
  client->leases.init(client->seg.leases(client->id), client->seg.lease_times(client->id), leases);
  *out = client.release();
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_detach(wb_client *client) try {
  if (client == nullptr) return fail(WB_E_INVAL, "client is NULL");
  // A successor broker keeps our slot until we resume: resume, so that it frees it now.
  client->connection.check_broker();
  // Nothing below allocates, so that detach cannot stop half-way. The topics are closed here without asking
  // the broker: it releases this client's publisher roles when the connection closes, which await_reclaim
  // waits for.
  while (wb_topic *topic = any_topic(client)) forget_topic(topic);  // each leaves the set
  cuda::finish_published(client);  // before the broker hears: it lets readers past a gone publisher's versions
  client->connection.await_reclaim();
  destroy(client);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_client_id(const wb_client *client, uint32_t *id) try {
  if (client == nullptr || id == nullptr) return fail(WB_E_INVAL, "client or id is NULL");
  *id = client->id;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
