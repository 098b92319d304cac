#include "net.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>

#include "failures.hpp"

namespace wbrelay {

std::atomic<bool> g_stop{false};

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t Deadline::remaining_ms() const {
  int64_t left = at_ms - now_ms();
  return left > 0 ? left : 0;
}

Endpoint parse_endpoint(const std::string &text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw RelayError(kExitUsage, "--rendezvous '" + text + "' is not HOST:PORT");
  }
  Endpoint e;
  e.host = text.substr(0, colon);
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    throw RelayError(kExitUsage, "--rendezvous '" + text + "': the port must be a number from 1 to 65535");
  }
  e.port = uint16_t(value);
  return e;
}

Socket &Socket::operator=(Socket &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) close(fd_);
}

int Socket::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

namespace {

struct AddrInfoFree {
  void operator()(addrinfo *a) const { freeaddrinfo(a); }
};

std::unique_ptr<addrinfo, AddrInfoFree> resolve(const Endpoint &e, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo *found = nullptr;
  int rc = getaddrinfo(e.host.c_str(), std::to_string(e.port).c_str(), &hints, &found);
  if (rc != 0) throw RelayError(kExitRendezvous, "cannot resolve '" + e.host + "': " + gai_strerror(rc));
  return std::unique_ptr<addrinfo, AddrInfoFree>(found);
}

// Waits for events on fd until the deadline; false when it passed first.
bool wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, int(deadline.remaining_ms()));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // let the read or write report it
  }
}

void set_options(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // control messages are small and awaited
}

}  // namespace

Socket listen_on(const Endpoint &at) {
  auto addresses = resolve(at, true);
  std::string why = "no address";
  for (addrinfo *a = addresses.get(); a != nullptr; a = a->ai_next) {
    Socket s(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!s.valid()) continue;
    int one = 1;
    setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s.fd(), a->ai_addr, a->ai_addrlen) == 0 && listen(s.fd(), 64) == 0) return s;
    why = strerror(errno);
  }
  throw RelayError(kExitRendezvous, "cannot listen on " + at.text() + ": " + why);
}

uint16_t local_port(const Socket &listener) {
  sockaddr_storage addr{};
  socklen_t size = sizeof(addr);
  getsockname(listener.fd(), reinterpret_cast<sockaddr *>(&addr), &size);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
}

Socket accept_until(const Socket &listener, Deadline deadline) {
  if (!wait_for(listener.fd(), POLLIN, deadline)) return Socket();
  Socket s(accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (s.valid()) set_options(s.fd());
  return s;
}

Socket connect_until(const Endpoint &to, Deadline deadline) {
  auto addresses = resolve(to, false);
  std::string why;
  do {
    for (addrinfo *a = addresses.get(); a != nullptr; a = a->ai_next) {
      Socket s(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
      if (!s.valid()) continue;
      int rc = connect(s.fd(), a->ai_addr, a->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS && wait_for(s.fd(), POLLOUT, deadline)) {
        int error = 0;
        socklen_t size = sizeof(error);
        getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &error, &size);
        rc = error == 0 ? 0 : -1;
        errno = error != 0 ? error : ETIMEDOUT;
      }
      if (rc == 0) {  // left non-blocking: every read and write polls with its deadline first
        set_options(s.fd());
        return s;
      }
      why = strerror(errno);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(100, deadline.remaining_ms())));
  } while (!deadline.passed() && !g_stop);  // a sink stopped while it waits for the source ends at once
  if (g_stop) throw RelayError(0, "stopped");
  throw RelayError(kExitRendezvous, "no relay source answers at " + to.text() + " (" + why + ")");
}

void write_all(int fd, const void *data, uint64_t size, Deadline deadline) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    if (!wait_for(fd, POLLOUT, deadline)) throw PeerError("the peer stopped reading (timed out)");
    ssize_t n = send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw PeerError(std::string("the connection broke: ") + strerror(errno));
    p += n;
    size -= uint64_t(n);
  }
}

void read_all(int fd, void *data, uint64_t size, Deadline deadline) {
  char *p = static_cast<char *>(data);
  while (size > 0) {
    if (!wait_for(fd, POLLIN, deadline)) throw PeerError("the peer went silent (timed out)");
    ssize_t n = recv(fd, p, size, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw PeerError(std::string("the connection broke: ") + strerror(errno));
    if (n == 0) throw PeerError("the peer closed the connection");
    p += n;
    size -= uint64_t(n);
  }
}

bool peer_gone(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR)) return true;
  char byte;
  ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

}  // namespace wbrelay
