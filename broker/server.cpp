#include "server.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include "descriptors.hpp"
#include "error.hpp"
#include "log.hpp"
#include "private_path.hpp"
#include "socket_dir.hpp"
#include "socket_path.hpp"

namespace wb::broker {

namespace {

// Messages handled per wake-up of one client, so that one busy client cannot starve the others.
constexpr int kMessagesPerWake = 64;
// How often orphaned clients of an adopted segment are checked (process alive, leases held).
constexpr uint64_t kOrphanCheckMs = 100;
// How long the broker stops accepting when the process (or the system) has no descriptor for a connection.
constexpr uint64_t kAcceptBackoffMs = 100;

bool someone_listens(const sockaddr_un &addr) {
  int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  bool listening = connect(probe, reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) == 0;
  close(probe);
  return listening;
}

}  // namespace

// The socket listens under a temporary name in the socket's directory first; publish_socket() renames it over
// the socket path once the registry is open. So the path names a socket that accepts and is served from the
// moment it appears (clients waiting for a successor wake when it does), and replaces a dead broker's socket
// in one step.
int Server::bind_socket() {
  sockaddr_un addr, temporary;
  int rc = socket_address(socket_path_.c_str(), &addr);
  if (rc != WB_OK || (rc = prepare_directory(socket_path_)) != WB_OK) return rc;
  if (someone_listens(addr)) return fail(WB_E_BUSY, "a broker already listens at %s", socket_path_.c_str());
  bound_path_ = private_path::socket_directory(socket_path_) + "/.weightbusd-" + std::to_string(getpid());
  if ((rc = socket_address(bound_path_.c_str(), &temporary)) != WB_OK) return rc;
  unlink(bound_path_.c_str());  // left by a broker of the same pid killed while it started
  listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return fail_errno("socket");
  mode_t old_mask = umask(0177);  // the socket is created 0600
  int bound = bind(listen_fd_, reinterpret_cast<sockaddr *>(&temporary), sizeof(temporary));
  umask(old_mask);
  if (bound != 0) return fail_errno(("bind " + bound_path_).c_str());
  if (listen(listen_fd_, 128) != 0) return fail_errno("listen");
  return WB_OK;
}

// systemd passes one listening socket as descriptor SD_LISTEN_FDS_START when $LISTEN_PID is ours. It must be
// a Unix seqpacket socket, as the broker binds; its path, systemd's, becomes the socket path (its directory is
// checked as the broker's own would be, docs/security.md), and systemd keeps it listening while no broker runs:
// a client connecting then starts the next broker, which adopts the segment a kept stop left.
int Server::take_activated_socket(bool *taken) {
  *taken = false;
  int n = sd_listen_fds(1);  // 1: unsets the variables, so that no child of the broker takes them as its own
  if (n == 0) return WB_OK;
  if (n < 0) return fail(WB_E_INVAL, "socket activation: $LISTEN_FDS: %s", strerror(-n));
  if (n > 1) return fail(WB_E_INVAL, "socket activation: systemd passed %d sockets; weightbusd serves one", n);
  int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, nullptr, 0) <= 0) {
    return fail(WB_E_INVAL, "socket activation: descriptor %d is not a listening Unix seqpacket socket (the "
                "socket unit needs ListenSequentialPacket=)", fd);
  }
  sockaddr_un addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) return fail_errno("getsockname");
  if (len <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0') {
    return fail(WB_E_INVAL, "socket activation: the socket has no path (an abstract socket): clients find the "
                "broker by a path");
  }
  std::string path(addr.sun_path, strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
  if (!options_.socket_path.empty() && options_.socket_path != path) {
    return fail(WB_E_INVAL, "socket activation: systemd's socket is %s, not --socket %s", path.c_str(),
                options_.socket_path.c_str());
  }
  int rc = prepare_directory(path);
  if (rc != WB_OK) return rc;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return fail_errno("fcntl of systemd's socket");
  }
  socket_path_ = bound_path_ = path;
  listen_fd_ = fd;
  activated_ = *taken = true;
  return WB_OK;
}

int Server::publish_socket() {
  if (rename(bound_path_.c_str(), socket_path_.c_str()) != 0) {
    return fail_errno(("renaming " + bound_path_ + " to " + socket_path_).c_str());
  }
  bound_path_ = socket_path_;
  return WB_OK;
}

int Server::run(int ready_fd) {
  char path[4096];
  if (!options_.socket_path.empty()) {
    socket_path_ = options_.socket_path;
  } else if (wb_default_socket_path(options_.name.c_str(), path, sizeof(path)) == WB_OK) {
    socket_path_ = path;
  } else {
    log(LogLevel::kError, "%s", wb_last_error());
    return 1;
  }
  // The stop signals are blocked for good, before the socket appears: a stop asked for the moment it does (a test,
  // a supervisor) waits in the signalfd read by the loop below, and stops the broker cleanly, not kills it.
  sigset_t stops;
  sigemptyset(&stops);
  for (int signum : kStopSignals) sigaddset(&stops, signum);
  pthread_sigmask(SIG_BLOCK, &stops, nullptr);
  bool adopted = false;
  stop_fd_ = signalfd(-1, &stops, SFD_NONBLOCK | SFD_CLOEXEC);
  int rc = stop_fd_ >= 0 ? WB_OK : fail_errno("signalfd of the stop signals");
  if (rc == WB_OK) rc = take_activated_socket(&activated_);
  if (rc == WB_OK && !activated_) rc = bind_socket();
  if (rc == WB_OK) rc = metrics_.bind(options_.metrics);  // --metrics: a port or path it cannot take stops it here
  if (rc == WB_OK) rc = dispatcher_.open_registry(&adopted);
  if (rc == WB_OK && !activated_) rc = publish_socket();
  if (rc != WB_OK) {
    log(LogLevel::kError, "%s", wb_last_error());
    if (listen_fd_ >= 0) close(listen_fd_);
    if (!bound_path_.empty() && bound_path_ != socket_path_) unlink(bound_path_.c_str());
    if (stop_fd_ >= 0) close(stop_fd_);
    pthread_sigmask(SIG_UNBLOCK, &stops, nullptr);
    return 1;
  }
  inbox_.reserve();
  uv_loop_init(&loop_);
  uv_timer_init(&loop_, &orphan_timer_);
  orphan_timer_.data = this;
  if (adopted) {
    uv_timer_start(&orphan_timer_, [](uv_timer_t *timer) { static_cast<Server *>(timer->data)->reap_orphans(); },
                   0, kOrphanCheckMs);
  }
  uv_timer_init(&loop_, &accept_timer_);
  accept_timer_.data = this;
  uv_poll_init(&loop_, &listener_, listen_fd_);
  listener_.data = this;
  start_accepting();
  uv_poll_init(&loop_, &stop_poll_, stop_fd_);  // one that came meanwhile is read at once
  stop_poll_.data = this;
  uv_poll_start(&stop_poll_, UV_READABLE,
                [](uv_poll_t *h, int, int) { static_cast<Server *>(h->data)->on_stop_signal(); });
  const shm::Capacities &caps = dispatcher_.registry().seg().caps();
  log(LogLevel::kInfo, "listening on %s%s, %s segment /%s (%llu bytes: %u topics, %u tensors, %u clients)",
      socket_path_.c_str(), activated_ ? " (systemd's socket)" : "", adopted ? "adopted" : "new",
      dispatcher_.registry().shm_name().c_str(), (unsigned long long)dispatcher_.registry().seg().header().segment_size,
      caps.max_topics, caps.max_tensors, caps.max_clients);
  // Type=notify: systemd starts the units ordered after this one now. Without $NOTIFY_SOCKET it does nothing.
  sd_notifyf(0, "READY=1\nSTATUS=serving %s, segment /%s (%s)", socket_path_.c_str(),
             dispatcher_.registry().shm_name().c_str(), adopted ? "adopted" : "new");
  if (ready_fd >= 0) {
    (void)!write(ready_fd, "r", 1);
    close(ready_fd);
  }
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  dispatcher_.descriptors().start(raise_descriptor_limit(), count_open_descriptors(), caps.max_clients);
  metrics_.start(&loop_, dispatcher_.registry(), dispatcher_.descriptors());
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  return 0;
}

void Server::start_accepting() {
  uv_poll_start(&listener_, UV_READABLE, [](uv_poll_t *handle, int, int) {
    static_cast<Server *>(handle->data)->accept_clients();
  });
}

Connection *Server::add_connection() {
  try {
    auto conn = std::make_unique<Connection>();
    Connection *raw = conn.get();
    connections_.emplace(raw, std::move(conn));
    return raw;
  } catch (const std::bad_alloc &) {
    return nullptr;
  }
}

void Server::accept_clients() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) return accept_without_descriptors(errno);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) WB_LOG_LIMITED(LogLevel::kWarn, "accept: %s", strerror(errno));
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      close(fd);
      continue;
    }
    if (dispatcher_.descriptors().check_connection() != WB_OK) {
      refuse_connection(fd, cred.pid);
      continue;
    }
    Connection *conn = add_connection();
    if (conn == nullptr) {
      WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: connection closed: the broker is out of memory", unsigned(cred.pid));
      close(fd);
      continue;
    }
    dispatcher_.descriptors().hold_connection();
    conn->client.fd = fd;
    conn->client.pid = uint32_t(cred.pid);
    conn->client.uid = uint32_t(cred.uid);
    conn->client.uid_refused = cred.uid != getuid();  // answered with WB_E_PERM on its first request
    uv_poll_init(&loop_, &conn->poll, fd);
    conn->poll.data = conn;
    conn->server = this;
    uv_poll_start(&conn->poll, UV_READABLE | UV_DISCONNECT, [](uv_poll_t *handle, int status, int) {
      Connection *c = static_cast<Connection *>(handle->data);
      if (status < 0) {
        c->server->drop(c, uv_strerror(status));
        return;
      }
      c->server->read_client(c);
    });
  }
}

void Server::refuse_connection(int fd, uint32_t pid) {
  WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: connection refused: %s", unsigned(pid), wb_last_error());
  dispatcher_.refuse_connection(fd, WB_E_NOSPC);
  // Closing a socket with unread requests resets it, and the client's receive would report the reset before
  // the refusal: its first requests are read and dropped (a few at most: the refusal is for one who waits).
  char byte;
  for (int i = 0; i < kMessagesPerWake && recv(fd, &byte, 1, MSG_DONTWAIT) >= 0; ++i) {
  }
  close(fd);
}

// The classic way out of EMFILE (libev, libuv's uv__emfile_trick): give up the spare descriptor, accept the
// connection into it, refuse and close it, take the spare back. The listening socket stays readable while a
// connection waits, so without this the loop would wake at once, again and again.
void Server::accept_without_descriptors(int err) {
  WB_LOG_LIMITED(LogLevel::kWarn, "accept: %s: refusing new connections", strerror(err));
  if (spare_fd_ >= 0 && err == EMFILE) {
    close(spare_fd_);
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      fail(WB_E_NOSPC, "the broker has no descriptor left for a connection (RLIMIT_NOFILE %llu): try again later",
           (unsigned long long)dispatcher_.descriptors().limit());
      refuse_connection(fd, 0);
    }
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && spare_fd_ >= 0) return;
  }
  uv_poll_stop(&listener_);
  uv_timer_start(&accept_timer_, [](uv_timer_t *timer) {
    static_cast<Server *>(timer->data)->start_accepting();
  }, kAcceptBackoffMs, 0);
}

void Server::read_client(Connection *conn) {
  Client *client = &conn->client;
  for (int i = 0; i < kMessagesPerWake && client->hang_up == nullptr; ++i) {
    int rc = wire::receive(client->fd, 0, &inbox_);
    if (rc == WB_E_TIMEOUT) return;
    if (rc == WB_OK) {
      dispatcher_.handle(client, inbox_);
      wire::close_all(inbox_.fds);
    } else if (rc == WB_E_SIZE || rc == WB_E_PROTOCOL) {
      dispatcher_.refuse_unreadable(client, rc);  // the datagram is consumed: the next one starts clean
    } else {
      return drop(conn, rc == WB_E_BROKER_GONE ? "closed its socket" : wb_last_error());
    }
  }
  if (client->hang_up != nullptr) drop(conn, client->hang_up);
}

void Server::drop(Connection *conn, const char *why) {
  auto found = connections_.find(conn);
  if (found == connections_.end()) return;
  std::unique_ptr<Connection> owned = std::move(found->second);
  connections_.erase(found);
  dispatcher_.descriptors().release_connection();
  if (why != nullptr) dispatcher_.client_gone(&conn->client, why);
  uv_poll_stop(&conn->poll);
  close(conn->client.fd);
  uv_close(reinterpret_cast<uv_handle_t *>(&conn->poll),
           [](uv_handle_t *handle) { delete static_cast<Connection *>(handle->data); });
  owned.release();  // freed by the close callback, once libuv is done with the handle
}

void Server::reap_orphans() {
  if (!dispatcher_.reap_orphans()) uv_timer_stop(&orphan_timer_);
}

void Server::on_stop_signal() {
  signalfd_siginfo info;
  if (read(stop_fd_, &info, sizeof(info)) != ssize_t(sizeof(info))) return;  // EAGAIN: nothing there after all
  stop(int(info.ssi_signo));
}

void Server::stop(int signum) {
  bool keep = signum == SIGUSR1 || (signum != SIGUSR2 && options_.on_stop == OnStop::kKeep);
  if (keep) {
    log(LogLevel::kInfo, "%s: stopping; the segment /%s stays, with every topic, for the next broker named %s "
        "(weightbus stop --remove removes it)", strsignal(signum), dispatcher_.registry().shm_name().c_str(),
        options_.name.c_str());
  } else {
    log(LogLevel::kInfo, "%s: stopping; removing the segment /%s with every topic", strsignal(signum),
        dispatcher_.registry().shm_name().c_str());
  }
  sd_notify(0, "STOPPING=1");
  shutdown(keep);
}

// A kept segment is left as a crash leaves it: the clients stay in it with their leases and roles, and resume
// with the next broker (the library waits for one while the segment exists). So they are not dropped here.
void Server::shutdown(bool keep) {
  if (keep) dispatcher_.keep_segment();
  while (!connections_.empty()) {
    Connection *conn = connections_.begin()->first;
    drop(conn, keep ? nullptr : "broker shutting down");
  }
  metrics_.stop();
  uv_close(reinterpret_cast<uv_handle_t *>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t *>(&stop_poll_), nullptr);
  close(stop_fd_);  // a stop signal from now on stays pending, blocked, until the broker has exited
  uv_close(reinterpret_cast<uv_handle_t *>(&orphan_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t *>(&accept_timer_), nullptr);
  close(listen_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
  if (!activated_) unlink(socket_path_.c_str());  // systemd's socket stays, to start the next broker
}

}  // namespace wb::broker
