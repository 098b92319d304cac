// The broker's event loop: a libuv loop watching the listening socket, every client's socket and the
// shutdown signals. A client's death is noticed the moment its socket closes, and reclaimed at once.
#pragma once

#include <uv.h>

#include <csignal>
#include <iterator>
#include <memory>
#include <string>
#include <unordered_map>

#include "dispatcher.hpp"
#include "metrics_server.hpp"
#include "options.hpp"

namespace wb::broker {

class Server;

struct Connection {
  uv_poll_t poll;  // poll.data points back at this connection
  Server *server = nullptr;
  Client client;
};

class Server {
 public:
  explicit Server(const Options &options) : options_(options), dispatcher_(options) {}
  // Creates the registry and the socket, then runs until SIGTERM/SIGINT. ready_fd (>= 0) gets one byte once
  // clients can connect. Returns the process exit status.
  int run(int ready_fd);

 private:
  int bind_socket();     // listens at a temporary name beside the socket path (bound_path_)
  // Takes the listening socket systemd passes ($LISTEN_FDS, socket activation), if any: *taken says whether.
  int take_activated_socket(bool *taken);
  int publish_socket();  // renames it to the socket path, once the registry is open
  // A new connection's record (in connections_), or nullptr when there is no memory for one.
  Connection *add_connection();
  void start_accepting();
  void accept_clients();
  // accept4 failed with EMFILE or ENFILE: refuses the waiting connection with the spare descriptor, else stops
  // accepting for kAcceptBackoffMs, so that a listening socket that stays readable is not polled in a spin.
  void accept_without_descriptors(int err);
  // Answers a connection the broker will not serve with WB_E_NOSPC (wb_last_error() says why) and closes it.
  void refuse_connection(int fd, uint32_t pid);
  void read_client(Connection *conn);
  // Closes a connection; the dispatcher hears that its client is gone unless why is nullptr: then the client
  // stays in the segment, to resume with a successor (a kept stop).
  void drop(Connection *conn, const char *why);
  // Stops on a signal: SIGTERM and SIGINT as --on-stop says, SIGUSR1 keeping the segment, SIGUSR2 removing it.
  void stop(int signum);
  void shutdown(bool keep);
  void reap_orphans();

  const Options &options_;
  Dispatcher dispatcher_;
  std::string socket_path_;
  std::string bound_path_;  // where the listening socket is: a temporary name until publish_socket()
  uv_loop_t loop_;
  uv_poll_t listener_;
  int listen_fd_ = -1;
  bool activated_ = false;  // listen_fd_ came from systemd, which keeps its path
  // SIGTERM and SIGINT stop as --on-stop says; SIGUSR1 keeps the topics, SIGUSR2 removes them. They stay
  // blocked from the start and are read from a signalfd the loop polls: no handler runs asynchronously, so none
  // can be lost between a check and the loop's sleep (nor held back, as ThreadSanitizer holds handlers back
  // until an intercepted call).
  static constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
  int stop_fd_ = -1;
  uv_poll_t stop_poll_;
  void on_stop_signal();
  uv_timer_t orphan_timer_;  // while an adopted segment has orphaned clients: reclaims them as they finish
  uv_timer_t accept_timer_;  // restarts accepting after a backoff (accept_without_descriptors)
  int spare_fd_ = -1;        // /dev/null, closed to make room to refuse a connection when the process has none
  std::unordered_map<Connection *, std::unique_ptr<Connection>> connections_;
  MetricsServer metrics_;  // weightbusd --metrics
  wire::Received inbox_;  // every message is received here, made at start: handling one allocates no buffer
};

}  // namespace wb::broker
