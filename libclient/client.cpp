// Attaching to a broker, the request/reply exchange, and the client-wide lease slots.
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "client_internal.hpp"
#include "clock.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "futex.hpp"
#include "private_path.hpp"
#include "process_id.hpp"
#include "socket_path.hpp"
#include "wire.hpp"

namespace wb {

namespace {

// Sleep slices: a waiter re-checks the broker's socket this often, so its death is noticed promptly.
constexpr int64_t kSliceNs = 100'000'000;

const char *default_client_name() { return program_invocation_short_name; }

int send_attach(wb_client *client, const char *name, Reply *reply) {
  std::vector<uint32_t> fields = shm::fingerprint_words();
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateAttachDirect(builder, shm::kLayoutVersion, &fields, process_id(), name);
  // Not through request(): a client that is not attached yet has no slot to resume if the broker dies now.
  std::lock_guard lock(client->request_mutex);
  return transact(client, client->sock, builder, proto::Body::Attach, body.Union(), nullptr, 0, reply);
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
  client->segment_fd = dup(fd);  // kept to see whether the segment outlives its broker (resume.cpp)
  rc = shm::validate_header(base, client->segment_size);
  if (rc != WB_OK) return rc;
  client->seg = shm::Segment(base);
  return WB_OK;
}

// Half-closes our socket and waits (bounded) for the broker to close its end, which it does once it has
// reclaimed our slot and leases: when wb_detach returns, listings and capacities no longer count us.
void await_reclaim(wb_client *client) {
  if (client->sock < 0 || client->broker_gone.load()) return;
  shutdown(client->sock, SHUT_WR);
  Deadline deadline(client->timeout_ms);
  char byte;
  for (;;) {
    pollfd pfd{client->sock, POLLIN, 0};
    int ready = poll(&pfd, 1, int(deadline.remaining_ms()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || recv(client->sock, &byte, 1, MSG_DONTWAIT) <= 0) return;
  }
}

void destroy(wb_client *client) {
  cuda::close_client(client);
  client->allocations.unmap_all();
  if (client->segment_base != nullptr) munmap(client->segment_base, client->segment_size);
  if (client->segment_fd >= 0) close(client->segment_fd);
  if (client->sock >= 0) close(client->sock);
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

// Aborts the topic's update, drops its snapshots' leases and frees it, allocating nothing.
void forget_topic(wb_topic *topic) {
  wb_update *update;
  {
    std::lock_guard lock(topic->handles_mutex);
    update = topic->update;
  }
  if (update != nullptr) abort_update(update);
  while (wb_snapshot *snapshot = any_snapshot(topic)) orphan_snapshot(snapshot);  // each leaves the set
  release_topic(topic);
}

}  // namespace

// Only a broker of our own uid is talked to: the socket's directory must be private to us (a missing one is left
// to connect() to report) and the listening process must run as us, checked before anything is sent. A broker
// of root is refused too (a root client accepts only root): a broker of another uid must not see our requests,
// nor hand us a segment and metadata of its choosing.
int connect_socket(const char *path, int *out) {
  unsigned uid = geteuid();
  int rc = private_path::check_socket_directory(path, uid);
  if (rc != WB_OK && rc != WB_E_NOT_FOUND) return rc;
  sockaddr_un addr;
  if ((rc = socket_address(path, &addr)) != WB_OK) return rc;
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) return fail_errno("socket");
  if (connect(sock, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(sock);
    if (err == ENOENT || err == ECONNREFUSED) {
      return fail(WB_E_CONNECT, "no broker listens at %s (start one with `weightbusd`)", path);
    }
    if (err == EACCES) return fail(WB_E_PERM, "no permission to connect to %s", path);
    errno = err;
    return fail_errno("connect");
  }
  if ((rc = private_path::check_peer(path, sock, uid)) != WB_OK) {
    close(sock);
    return rc;
  }
  *out = sock;
  return WB_OK;
}

int check_struct_size(uint32_t given, size_t needed, const char *type_name) {
  if (given < needed) {
    return fail(WB_E_INVAL, "%s.struct_size is %u, expected at least %zu: initialise it with its _INIT macro",
                type_name, given, needed);
  }
  return WB_OK;
}

namespace {

const proto::Reply *parse_reply(const wire::Received &got) {
  flatbuffers::Verifier verifier(got.data.data(), got.data.size());
  return verifier.VerifyBuffer<proto::Message>() ? proto::GetMessage(got.data.data())->body_as_Reply() : nullptr;
}

// A broker that refuses a connection (out of descriptors) answers request id 0 and closes it, maybe before it
// read the request: the send then finds the socket closed, or the receive its reset, while the refusal is still
// queued. Returns the refusal's error, else WB_E_BROKER_GONE as the send or receive said.
int queued_refusal(int sock, wire::Received *got) {
  char why[512];
  snprintf(why, sizeof(why), "%s", wb_last_error());
  if (wire::receive(sock, 0, got) == WB_OK) {
    wire::close_all(got->fds);
    const proto::Reply *r = parse_reply(*got);
    if (r != nullptr && proto::GetMessage(got->data.data())->id() == 0 && r->code() != WB_OK) {
      return fail(r->code(), "%s", r->message() ? r->message()->c_str() : "refused");
    }
  }
  return fail(WB_E_BROKER_GONE, "%s", why);
}

}  // namespace

int transact(wb_client *client, int sock, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
             flatbuffers::Offset<void> body, const int *fds, int nfds, Reply *reply) {
  uint32_t id = ++client->next_request_id;
  builder.Finish(proto::CreateMessage(builder, id, type, body));
  int rc = wire::send(sock, builder.GetBufferPointer(), builder.GetSize(), fds, nfds);
  if (rc == WB_OK && reply != nullptr) rc = wire::receive(sock, client->timeout_ms, &reply->message);
  if (rc == WB_E_BROKER_GONE && reply != nullptr) return queued_refusal(sock, &reply->message);
  if (rc != WB_OK || reply == nullptr) return rc;
  wire::Received &got = reply->message;  // made with the reply: nothing below allocates
  const proto::Reply *r = parse_reply(got);
  const proto::Message *msg = proto::GetMessage(got.data.data());
  // A reply to id 0 is the broker refusing what it could not take as a request (a message it could not read,
  // or this connection, when it is out of descriptors): its error is this call's.
  bool refused = r != nullptr && msg->id() == 0 && r->code() != WB_OK;
  if (r == nullptr || (msg->id() != id && !refused)) {
    wire::close_all(got.fds);
    return fail(WB_E_PROTOCOL, "the broker sent a malformed or unexpected reply");
  }
  reply->code = r->code();
  reply->value = r->value();
  reply->size = r->size();
  reply->fds.swap(got.fds);
  return r->code() == WB_OK ? WB_OK : fail(r->code(), "%s", r->message() ? r->message()->c_str() : "refused");
}

static int exchange(wb_client *client, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
                    flatbuffers::Offset<void> body, const int *fds, int nfds, Reply *reply) {
  int rc = check_broker(client);
  if (rc != WB_OK) return rc;
  std::lock_guard lock(client->request_mutex);
  rc = transact(client, client->sock, builder, type, body, fds, nfds, reply);
  if (rc == WB_E_BROKER_GONE) mark_broker_gone(client);
  return rc;
}

int request(wb_client *client, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
            flatbuffers::Offset<void> body, Reply *reply, const int *fds, int nfds) {
  int rc = exchange(client, builder, type, body, fds, nfds, reply);
  if (rc != WB_OK) {
    for (int fd : reply->fds) close(fd);
    reply->fds.clear();
  }
  return rc;
}

int notify(wb_client *client, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
           flatbuffers::Offset<void> body) {
  return exchange(client, builder, type, body, nullptr, 0, nullptr);
}

void mark_broker_gone(wb_client *client) {
  if (!client->broker_gone.exchange(true)) client->broker_gone_since_ns.store(monotonic_ns());
}

bool broker_gone(wb_client *client) {
  if (client->broker_gone.load()) return true;
  pollfd pfd{client->sock, POLLRDHUP, 0};
  if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) mark_broker_gone(client);
  return client->broker_gone.load();
}

int sleep_on(wb_client *client, std::atomic<uint32_t> *word, std::atomic<uint32_t> *waiters, uint32_t expected,
             int64_t remaining_ns) {
  if (int rc = check_broker_while_waiting(client); rc != WB_OK) return rc;
  if (remaining_ns == 0) return WB_E_TIMEOUT;
  cuda::sweep(client);  // a reader blocked here still drops revoked CUDA imports, once per slice
  int64_t slice = remaining_ns < 0 ? kSliceNs : std::min(remaining_ns, kSliceNs);
  waiters->fetch_add(1, std::memory_order_seq_cst);
  futex_wait(word, expected, slice);
  waiters->fetch_sub(1, std::memory_order_seq_cst);
  return WB_OK;
}

int take_lease_slot(wb_client *client, uint32_t *slot) {
  std::lock_guard lock(client->lease_mutex);
  auto free_slot = std::find(client->lease_taken.begin(), client->lease_taken.end(), false);
  if (free_slot == client->lease_taken.end()) {
    return fail(WB_E_NOSPC, "all %zu lease slots of this client are held (broker flag --leases-per-client)",
                client->lease_taken.size());
  }
  *free_slot = true;
  *slot = uint32_t(free_slot - client->lease_taken.begin());
  return WB_OK;
}

void drop_lease(wb_client *client, wb_topic *topic, uint32_t slot) {
  client->seg.leases(client->id)[slot].store(0, std::memory_order_seq_cst);
  bump_and_wake(&topic->entry->release_seq, &topic->entry->release_waiters);
  std::lock_guard lock(client->lease_mutex);
  client->lease_taken[slot] = false;
}

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
  client->timeout_ms = opts->timeout_ms;
  client->socket_path = path;
  if ((rc = connect_socket(path, &client->sock)) != WB_OK) return rc;
  Reply reply;
  rc = send_attach(client.get(), opts->client_name ? opts->client_name : default_client_name(), &reply);
  if (rc == WB_OK && reply.fds.size() != 1) rc = fail(WB_E_PROTOCOL, "the broker attached without a segment");
  if (rc == WB_OK) rc = map_segment(client.get(), reply.fds[0]);
  if (rc == WB_OK && reply.value >= client->seg.caps().max_clients) {
    rc = fail(WB_E_PROTOCOL, "the broker gave client slot %llu", (unsigned long long)reply.value);
  }
  if (rc != WB_OK) return rc;
  client->id = uint32_t(reply.value);
  client->generation = client->seg.client(client->id).generation;
  client->crash_seam = crash_seam_from_env();
  client->lease_taken.assign(client->seg.caps().leases_per_client, false);
  *out = client.release();
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_detach(wb_client *client) try {
  if (client == nullptr) return fail(WB_E_INVAL, "client is NULL");
  check_broker(client);  // a successor broker keeps our slot until we resume: resume, so that it frees it now
  // Nothing below allocates, so that detach cannot stop half-way. The topics are closed here without asking
  // the broker: it releases this client's publisher roles when the connection closes, which await_reclaim
  // waits for.
  while (wb_topic *topic = any_topic(client)) forget_topic(topic);  // each leaves the set
  await_reclaim(client);
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
