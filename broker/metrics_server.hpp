// weightbusd --metrics: Prometheus' text exposition (core/metrics.hpp) over plain HTTP/1.0 on the broker's libuv
// loop, one `GET /metrics` per connection. Off unless asked for. Nothing a scraper does can stall the broker:
// requests are read and answered without blocking (libuv streams), at most kMaxRequestBytes of a request are
// looked at, every connection is closed kDeadlineMs after it came whatever it does, at most kMaxConnections are
// served at once (later ones wait in the listen backlog: their descriptors are counted in the broker's budget
// up front) and the figures are read from the segment at most every kRefreshMs however often they are asked for.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "descriptors.hpp"
#include "metrics_endpoint.hpp"
#include "registry.hpp"

namespace wb::broker {

class MetricsServer {
 public:
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr uint64_t kDeadlineMs = 5000;
  static constexpr size_t kMaxConnections = 8;
  static constexpr uint64_t kRefreshMs = 100;

  // One scraper's connection, a slot of a fixed pool: accepting one allocates nothing.
  struct Connection {
    MetricsServer *server = nullptr;
    bool in_use = false;
    bool closing = false;
    bool answered = false;
    bool sent = false;       // the answer is written out
    bool peer_done = false;  // the scraper closed its sending side before its answer was out
    int open_handles = 0;
    union {
      uv_tcp_t tcp;
      uv_pipe_t pipe;
    } stream;
    uv_timer_t deadline;
    uv_write_t write;
    uv_shutdown_t shutdown;
    char head[256];                                // the response's status line and headers
    std::shared_ptr<const std::string> body;       // held until the write is done: the cache may move on
    char request[kMaxRequestBytes];
    size_t received = 0;
    uv_stream_t *handle() { return reinterpret_cast<uv_stream_t *>(&stream); }
  };

  MetricsServer() = default;
  MetricsServer(const MetricsServer &) = delete;
  MetricsServer &operator=(const MetricsServer &) = delete;
  ~MetricsServer();

  // Binds and listens at endpoint (off: does nothing), before the broker serves anyone, so that a taken port or
  // path stops it at once: WB_E_INVAL (a path that is not a socket, an address this host does not have),
  // WB_E_BUSY (someone listens there) or WB_E_IO, the message naming the endpoint.
  int bind(const MetricsEndpoint &endpoint);
  // Serves the figures of registry's segment on loop (both outlive the server), its descriptors counted in
  // descriptors (started already).
  void start(uv_loop_t *loop, const Registry &registry, Descriptors &descriptors);
  // Closes the listener and every connection, and removes a Unix socket's path.
  void stop();

 private:
  void accept_one();
  void on_read(Connection *conn, ssize_t nread);
  void respond(Connection *conn, int status);  // writes the answer, then waits for the scraper to close
  void finish(Connection *conn);    // closes its handles; the slot is free once libuv is done with them
  void released(Connection *conn);  // its handles are closed
  // The exposition, read again when older than kRefreshMs; nullptr when there was no memory for it.
  std::shared_ptr<const std::string> body();

  MetricsEndpoint endpoint_;
  int fd_ = -1;  // the bound socket until start() hands it to libuv
  bool started_ = false;
  uv_loop_t *loop_ = nullptr;
  const Registry *registry_ = nullptr;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } listener_;
  bool waiting_ = false;  // a connection libuv accepted waits for a free slot
  Connection pool_[kMaxConnections];
  std::shared_ptr<const std::string> body_;
  uint64_t body_at_ms_ = 0;  // uv_now when body_ was read
};

}  // namespace wb::broker
