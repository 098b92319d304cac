// weightbus stop: stops the broker that listens on a socket, cleanly. The broker's pid comes from the broker
// itself (wb_broker_get_info), so that no pid file can be stale, after the socket's listener was found to be of
// our uid (SO_PEERCRED); a pidfd keeps that pid from naming another process between the lookup and the
// signal, and tells when the broker has exited.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "output_json.hpp"
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

// Refuses the socket unless the process listening at path, as the kernel recorded it when that process called
// listen(), is of our uid. Only a process of our own uid is a broker of ours (docs/security.md): another
// uid's is never signalled, nor even asked.
void check_listener(const std::string &path) {
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
}

// The broker's pid, as it says itself. It is the socket's listener unless systemd made the socket (socket
// activation): then the listener is systemd, which must never get the signal. The client detaches on return,
// before the signal, so that a broker that keeps its segment keeps no client of ours in it.
pid_t broker_pid(const std::string &path, int64_t timeout_ms) {
  weightbus::Client client = attach_to(path, "weightbus stop", timeout_ms);
  wb_broker_info info = WB_BROKER_INFO_INIT;
  doing("ask the broker at " + path + " for its pid", [&] { weightbus::check(wb_broker_get_info(client.get(), &info)); });
  struct stat st;
  const std::string proc = "/proc/" + std::to_string(info.pid);
  if (stat(proc.c_str(), &st) != 0) fail_errno("stop: the broker at " + path + " says it is pid " +
                                               std::to_string(info.pid) + ", but " + proc);
  if (st.st_uid != geteuid())
    throw std::runtime_error("stop: the broker at " + path + " says it is pid " + std::to_string(info.pid) +
                             ", a process of uid " + std::to_string(st.st_uid) + ": nothing was signalled");
  return pid_t(info.pid);
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
  const bool keep = args.flag("--keep"), remove = args.flag("--remove");
  if (keep && remove) throw UsageError("stop: --keep and --remove exclude each other");
  // SIGTERM stops as the broker's --on-stop says; SIGUSR1 and SIGUSR2 say it here (weightbusd --help).
  const int signum = keep ? SIGUSR1 : remove ? SIGUSR2 : SIGTERM;
  const std::string signame = keep ? "SIGUSR1" : remove ? "SIGUSR2" : "SIGTERM";
  args.positionals(0, 0);
  const std::string path = socket_path(g);
  check_listener(path);  // refuses another uid's listener before anything is sent to it
  const pid_t pid = broker_pid(path, timeout_ms);
  const std::string broker = "the broker at " + path + " (pid " + std::to_string(pid) + ")";
  Fd pidfd{pidfd_open(pid, 0)};
  if (pidfd.fd < 0 && errno != ESRCH) fail_errno("stop: pidfd_open of " + broker);
  // A broker that exited since it answered is stopped already.
  if (pidfd.fd >= 0 && pidfd_send_signal(pidfd.fd, signum, nullptr, 0) != 0 && errno != ESRCH)
    fail_errno("stop: " + signame + " to " + broker);
  if (pidfd.fd >= 0 && !exited_within(pidfd.fd, timeout_ms))
    throw std::runtime_error("stop: " + broker + " did not exit within " + std::to_string(timeout_ms) +
                             " ms of " + signame + "; it still runs (kill -9 " + std::to_string(pid) +
                             " would leave its segment in /dev/shm for the next broker of its name to adopt)");
  if (g.json) {
    out_json(Json::object({{"socket", path}, {"pid", pid}, {"stopped", true}}));
  } else {
    out_line("stopped " + broker);
  }
  return 0;
}

}  // namespace

const Command kStopCommand = {
    "stop",
    "stop a broker cleanly (SIGTERM) and wait until it has exited",
    "weightbus stop [--keep | --remove] [--timeout-ms MS] [--json]",
    R"HELP(Stop the broker that listens on the socket (--socket PATH, or the default path of --name BROKER):
ask it for its pid (after checking that the socket's listener runs as your uid), send it SIGTERM and wait
until it has exited. Under systemd's socket activation the listener is systemd, never signalled. The broker's own
--on-stop says what SIGTERM does with its topics: remove (weightbusd's default) drops its clients and removes
its socket and its shared-memory segment, with every topic in it; keep (the systemd units' setting) leaves the
segment in /dev/shm, as SIGKILL does: a broker started again with the same name adopts it, with every topic
and version, and the clients resume with it. --keep or --remove decides here, whatever --on-stop says. Exits 1
when no broker listens on the socket, or when the broker has not exited within the timeout.

options:
  --keep            keep the topics for the next broker of this name (sends SIGUSR1)
  --remove          remove every topic with the segment (sends SIGUSR2)
  --timeout-ms MS   how long to wait for the broker to exit (default 10000)
  --json            print {"socket": ..., "pid": ..., "stopped": true}

examples:
  weightbusd --name job7 && weightbus --name job7 stop
  weightbus --socket /run/weightbus/train.sock stop --timeout-ms 30000
  weightbus stop --keep && weightbusd     (a restart that keeps every topic)
)HELP",
    "timeout-ms: keep remove",
    run_stop,
};

}  // namespace wbcli
