// TCP with deadlines: every wait of the relay on the network is bounded, so a peer that dies or stops answering
// becomes a PeerError instead of a hang, and a stop signal (g_stop) ends the waits for a peer.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace wbrelay {

// Set by SIGINT/SIGTERM: both roles finish what they are doing and return. Here, below the roles, because
// waiting for a peer (connect_until) is the first thing a stop must cut short.
extern std::atomic<bool> g_stop;

int64_t now_ms();  // CLOCK_MONOTONIC

struct Deadline {
  static Deadline after(int64_t ms) { return Deadline{now_ms() + ms}; }
  int64_t remaining_ms() const;  // 0 once passed
  bool passed() const { return remaining_ms() == 0; }
  int64_t at_ms;
};

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

// "HOST:PORT" or "[IPv6]:PORT"; RelayError(kExitUsage) naming what is wrong.
Endpoint parse_endpoint(const std::string &text);

// An owned file descriptor.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket &&other) noexcept : fd_(other.release()) {}
  Socket &operator=(Socket &&other) noexcept;
  ~Socket();
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

// Listens on the endpoint (all addresses of HOST). RelayError(kExitRendezvous) when it cannot.
Socket listen_on(const Endpoint &at);
// The port a listening socket got (for port 0).
uint16_t local_port(const Socket &listener);
// The next connection, or an invalid Socket when none came before the deadline.
Socket accept_until(const Socket &listener, Deadline deadline);
// Connects, retrying while nobody listens yet, until the deadline. RelayError(kExitRendezvous) naming the
// endpoint when it passes or the host does not resolve.
Socket connect_until(const Endpoint &to, Deadline deadline);

// Whole writes and reads, or PeerError (closed, reset, deadline passed).
void write_all(int fd, const void *data, uint64_t size, Deadline deadline);
void read_all(int fd, void *data, uint64_t size, Deadline deadline);
// True when the peer closed or reset the connection (checked without blocking or consuming data).
bool peer_gone(int fd);

}  // namespace wbrelay
