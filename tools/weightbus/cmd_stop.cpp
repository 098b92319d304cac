// weightbus stop: stops the broker that listens on a socket, cleanly. The broker's pid comes from the socket
// itself (SO_PEERCRED of a connection), so that no pid file can be stale; a pidfd keeps that pid from naming
// another process between the lookup and the signal, and tells when the broker has exited.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "json.hpp"
#include "socket_path.hpp"

// Debian 12's glibc (2.36) declares these without C linkage: its sys/pidfd.h lacks __BEGIN_DECLS.
extern "C" {
#include <sys/pidfd.h>
}

namespace wbcli {
namespace {

constexpr int64_t kDefaultTimeoutMs = 10000;

// A descriptor closed on every exit path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

[[noreturn]] void fail_errno(const std::string &what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

// The pid of the process listening at path, as the kernel recorded it when that process called listen(). Only
// a process of our own uid is a broker of ours (docs/security.md): another uid's is never signalled.
pid_t listener_pid(const std::string &path) {
  sockaddr_un addr;
  if (!wb::fill_socket_address(path.c_str(), &addr))
    throw std::runtime_error("stop: socket path " + path + " is longer than " +
                             std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  Fd s{socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) fail_errno("stop: socket");
  if (connect(s.fd, reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) != 0)
    fail_errno("stop: no broker listens at " + path + " (connect)");
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(s.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) fail_errno("stop: SO_PEERCRED of " + path);
  if (cred.uid != geteuid())
    throw std::runtime_error("stop: the process listening at " + path + " (pid " + std::to_string(cred.pid) +
                             ") runs as uid " + std::to_string(cred.uid) + ", not as uid " +
                             std::to_string(geteuid()) + ": it is not your broker; nothing was signalled");
  return cred.pid;
}

// Waits until the process behind pidfd has exited; false after timeout_ms.
bool exited_within(int pidfd, int64_t timeout_ms) {
  const int64_t deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    pollfd p = {pidfd, POLLIN, 0};
    const int64_t left = std::max<int64_t>(0, deadline - monotonic_ms());
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) fail_errno("stop: poll");
  }
}

int run_stop(const GlobalOptions &g, Args &args) {
  const int64_t timeout_ms = args.integer("--timeout-ms", 1, 86400000).value_or(kDefaultTimeoutMs);
  args.positionals(0, 0);
  const std::string path = socket_path(g);
  const pid_t pid = listener_pid(path);
  const std::string broker = "the broker at " + path + " (pid " + std::to_string(pid) + ")";
  Fd pidfd{pidfd_open(pid, 0)};
  if (pidfd.fd < 0 && errno != ESRCH) fail_errno("stop: pidfd_open of " + broker);
  // A broker that exited since it answered is stopped already.
  if (pidfd.fd >= 0 && pidfd_send_signal(pidfd.fd, SIGTERM, nullptr, 0) != 0 && errno != ESRCH)
    fail_errno("stop: SIGTERM to " + broker);
  if (pidfd.fd >= 0 && !exited_within(pidfd.fd, timeout_ms))
    throw std::runtime_error("stop: " + broker + " did not exit within " + std::to_string(timeout_ms) +
                             " ms of SIGTERM; it still runs (kill -9 " + std::to_string(pid) +
                             " would leave its segment in /dev/shm for the next broker of its name to adopt)");
  if (g.json) {
    out_line(JsonObject().str("socket", path).num("pid", pid).boolean("stopped", true).text());
  } else {
    out_line("stopped " + broker);
  }
  return 0;
}

}  // namespace

const Command kStopCommand = {
    "stop",
    "stop a broker cleanly (SIGTERM) and wait until it has exited",
    "weightbus stop [--timeout-ms MS] [--json]",
    R"HELP(Stop the broker that listens on the socket (--socket PATH, or the default path of --name BROKER):
find its pid from the socket (SO_PEERCRED), send it SIGTERM and wait until it has exited. A broker stopped so
drops its clients and removes its socket and its shared-memory segment, with every topic in it. (SIGKILL
instead leaves the segment in /dev/shm: a broker started again with the same name adopts it.) Exits 1 when no
broker listens on the socket, or when the broker has not exited within the timeout.

options:
  --timeout-ms MS   how long to wait for the broker to exit (default 10000)
  --json            print {"socket": ..., "pid": ..., "stopped": true}

examples:
  weightbusd --name job7 && weightbus --name job7 stop
  weightbus --socket /run/weightbus/train.sock stop --timeout-ms 30000
)HELP",
    run_stop,
};

}  // namespace wbcli
