// The broker's event loop: a libuv loop watching the listening socket, every client's socket and the
// shutdown signals. A client's death is noticed the moment its socket closes, and reclaimed at once.
#pragma once

#include <uv.h>

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "options.hpp"
#include "registry.hpp"
#include "wire.hpp"

namespace wb::broker {

class Server;

struct Connection {
  uv_poll_t poll;  // poll.data points back at this connection
  Server *server = nullptr;
  int fd = -1;
  uint32_t pid = 0;
  uint32_t uid = 0;
  bool uid_refused = false;
  bool attached = false;
  uint32_t slot = 0;
  std::set<uint32_t> published;  // topics this client is the publisher of
  std::set<uint32_t> imported;   // CUDA allocations this client has open (counted in their importers)
};

class Server {
 public:
  explicit Server(const Options &options) : options_(options) {}
  // Creates the registry and the socket, then runs until SIGTERM/SIGINT. ready_fd (>= 0) gets one byte once
  // clients can connect. Returns the process exit status.
  int run(int ready_fd);

  // Message handlers (handlers.cpp). Each answers the request with exactly one reply.
  void handle(Connection *conn, wire::Received &msg);
  void read_client(Connection *conn);
  void drop(Connection *conn, const char *why);

 private:
  int listen_socket();
  void accept_clients();
  void shutdown();
  void reap_orphans();
  void reply(Connection *conn, uint32_t id, int code, uint64_t value = 0, uint64_t size = 0, int fd = -1);
  void refuse(Connection *conn, uint32_t id, int code);  // replies with code and wb_last_error()
  void notify_subscribers(uint32_t topic);

  void on_attach(Connection *conn, uint32_t id, const void *body);
  void on_create_topic(Connection *conn, uint32_t id, const void *body);
  void on_open_topic(Connection *conn, uint32_t id, const void *body);
  void on_close_topic(Connection *conn, uint32_t id, const void *body);
  void on_alloc_tensors(Connection *conn, uint32_t id, const void *body);
  void on_create_view(Connection *conn, uint32_t id, const void *body);
  void on_get_allocation(Connection *conn, uint32_t id, const void *body);
  void on_subscribe(Connection *conn, uint32_t id, const void *body, std::vector<int> &fds);
  void on_published(Connection *conn, const void *body);
  // CUDA allocations (handlers_cuda.cpp).
  void on_register_cuda_allocation(Connection *conn, uint32_t id, const void *body);
  void on_add_allocation_chunks(Connection *conn, uint32_t id, const void *body, std::vector<int> &fds);
  void on_register_tensors(Connection *conn, uint32_t id, const void *body);
  void on_revoke_allocation(Connection *conn, uint32_t id, const void *body);
  void on_import_allocation(Connection *conn, uint32_t id, const void *body);
  void on_release_allocation(Connection *conn, uint32_t id, const void *body);
  // The client is gone: uncounts its imports and ends its legacy-IPC exports.
  void drop_cuda(Connection *conn);
  // Publisher-only requests about topic: WB_OK, or refuses and returns the error.
  int check_publisher(Connection *conn, uint32_t id, uint32_t topic);

  const Options &options_;
  Registry registry_;
  std::string socket_path_;
  uv_loop_t loop_;
  uv_poll_t listener_;
  int listen_fd_ = -1;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_timer_t orphan_timer_;  // while an adopted segment has orphaned clients: reclaims them as they finish
  std::unordered_map<Connection *, std::unique_ptr<Connection>> connections_;
  std::unordered_map<uint32_t, std::vector<std::pair<Connection *, int>>> subscribers_;  // topic -> (conn, fd)
};

}  // namespace wb::broker
