// The broker's message dispatch, apart from its event loop: checks one received control message of one client,
// applies it to the registry and answers it on the client's socket. server.cpp feeds it what arrives on the
// sockets; the fuzz harnesses (tests/fuzz/) feed it bytes directly, on a private segment.
#pragma once

#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "options.hpp"
#include "protocol_generated.h"
#include "registry.hpp"
#include "wire.hpp"

namespace wb::broker {

// One connected client, as the dispatcher sees it. The topics it publishes are the registry's to know.
struct Client {
  int fd = -1;
  uint32_t pid = 0;
  uint32_t uid = 0;
  bool uid_refused = false;
  bool attached = false;
  uint32_t slot = 0;
  std::set<uint32_t> imported;   // CUDA allocations this client has open (counted in their importers)
  uint32_t subscriptions = 0;     // notify pipes the dispatcher keeps for it (--max-subscriptions-per-client)
  const char *hang_up = nullptr;  // set when the connection must be closed: why
};

// Memory for building one reply at a time, owned by the dispatcher: a reply is a few hundred bytes (its
// message at most wb_last_error's 512), so answering never allocates, and a request that the registry applied
// or that ran out of memory is always answered.
class ReplyArena : public flatbuffers::Allocator {
 public:
  static constexpr size_t kSize = 1024;
  uint8_t *allocate(size_t size) override;
  void deallocate(uint8_t *, size_t) override {}

 private:
  alignas(16) uint8_t bytes_[kSize];
};

class Dispatcher {
 public:
  explicit Dispatcher(const Options &options) : options_(options) {}
  // Opens the segment (adopting one a dead broker left, see Registry::open); before any other call.
  int open_registry(bool *adopted);
  // Reclaims orphans of an adopted segment that are done (Registry::reap_orphans) and wakes the publishers
  // their leases held back. Returns whether orphans remain.
  bool reap_orphans();
  const Registry &registry() const { return registry_; }
  void keep_segment() { registry_.keep_segment(); }
  Descriptors &descriptors() { return registry_.descriptors(); }

  // Verifies, checks and applies one message and answers it (Published excepted). Sets client->hang_up when
  // the client must be disconnected. Running out of memory is answered with WB_E_NOMEM, the registry unchanged:
  // each operation allocates before it changes anything.
  void handle(Client *client, wire::Received &msg);
  // A datagram that could not be read whole (wire::receive's WB_E_SIZE or WB_E_PROTOCOL): answered with code.
  void refuse_unreadable(Client *client, int code);
  // A connection the broker will not serve (fd: its socket, closed by the caller): answered with code and
  // wb_last_error() as a reply to request id 0, which the library returns from the call it was making.
  void refuse_connection(int fd, int code);
  // The client's connection closed: reclaims its leases, publisher roles, CUDA imports and subscriptions.
  // Allocates nothing: a client that left is reclaimed however short memory is.
  void client_gone(Client *client, const char *why);

 private:
  void dispatch(Client *client, const proto::Message *m, std::vector<int> &fds);
  // Answers (replies.cpp).
  void reply(Client *client, uint32_t id, int code, uint64_t value = 0, uint64_t size = 0, int fd = -1);
  void refuse(Client *client, uint32_t id, int code);  // replies with code and wb_last_error()
  // Publisher-only requests about topic: WB_OK, or refuses and returns the error.
  int check_publisher(Client *client, uint32_t id, uint32_t topic);
  // Notify pipes (subscriptions.cpp).
  void notify_subscribers(uint32_t topic);
  // The registry's release_publisher (a publisher or a rank closed the topic or died), waking the topic's
  // notify-fd subscribers when that committed a version: the other ranks had all published it.
  uint32_t release_publisher(uint32_t topic, uint32_t client_slot);
  // The topic was removed: its subscribers' pipes are written to (they wake and find it gone) and closed.
  void drop_subscribers(uint32_t topic);
  // Room for one more subscription of client: its limit and a descriptor. Drops the client's subscriptions whose
  // reader is gone first when there is none, so that closing a notify fd frees its place.
  int make_room_for_subscription(Client *client);
  int check_subscription_room(const Client &client) const;
  void prune_subscriptions(Client *client);
  void unsubscribe(Client *client, uint32_t topic, int fd);  // closes fd and uncounts it

  // One per control message (handlers.cpp).
  void on_attach(Client *client, uint32_t id, const void *body);
  void on_resume(Client *client, uint32_t id, const proto::Attach *attach);
  void on_create_topic(Client *client, uint32_t id, const void *body);
  void on_open_topic(Client *client, uint32_t id, const void *body);
  void on_close_topic(Client *client, uint32_t id, const void *body);
  void on_remove_topic(Client *client, uint32_t id, const void *body);
  void on_alloc_tensors(Client *client, uint32_t id, const void *body);
  void on_create_view(Client *client, uint32_t id, const void *body);
  void on_get_allocation(Client *client, uint32_t id, const void *body);
  void on_subscribe(Client *client, uint32_t id, const void *body, std::vector<int> &fds);
  void on_published(Client *client, const void *body);
  // CUDA allocations (handlers_cuda.cpp).
  void on_register_cuda_allocation(Client *client, uint32_t id, const void *body);
  void on_add_allocation_chunks(Client *client, uint32_t id, const void *body, std::vector<int> &fds);
  void on_register_tensors(Client *client, uint32_t id, const void *body);
  void on_revoke_allocation(Client *client, uint32_t id, const void *body);
  void on_import_allocation(Client *client, uint32_t id, const void *body);
  void on_release_allocation(Client *client, uint32_t id, const void *body);
  // Sharded topics (handlers_shards.cpp).
  void on_seal_rank(Client *client, uint32_t id, const void *body);
  void on_rank_published(Client *client, const void *body);
  // The client is gone: uncounts its imports and ends its legacy-IPC exports.
  void drop_cuda(Client *client);

  const Options &options_;
  ReplyArena reply_arena_;
  bool answered_ = false;  // whether the message being handled got its reply
  Registry registry_;
  std::unordered_map<uint32_t, std::vector<std::pair<Client *, int>>> subscribers_;  // topic -> (client, fd)
};

}  // namespace wb::broker
