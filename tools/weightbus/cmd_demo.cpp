// weightbus demo: a private broker, a publisher and a reader, to watch versions flow with no setup. The README's
// Quick start runs it, so its output is written for someone who has never seen weightbus.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "demo.hpp"

namespace wbcli {
namespace {

using namespace demo;
namespace fs = std::filesystem;

constexpr int64_t kStopMs = 5000;  // from SIGTERM to SIGKILL

volatile sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

[[noreturn]] void fail_errno(const std::string &what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

struct Child {
  pid_t pid = 0;  // 0 once reaped
  const char *who;
};

// Reaps c if it has exited: returns true and sets *status.
bool reaped(Child &c, int *status) {
  if (c.pid == 0 || waitpid(c.pid, status, WNOHANG) != c.pid) return false;
  c.pid = 0;
  return true;
}

// Sends sig and waits up to grace_ms, then kills. Returns the exit status, or nothing if it had to be killed.
std::optional<int> stop(Child &c, int sig, int64_t grace_ms) {
  kill(c.pid, sig);
  const int64_t deadline = monotonic_ms() + grace_ms;
  int status = 0;
  while (!reaped(c, &status)) {
    if (monotonic_ms() <= deadline) {
      sleep_ms(5);
      continue;
    }
    kill(c.pid, SIGKILL);
    waitpid(c.pid, &status, 0);
    c.pid = 0;
    return std::nullopt;
  }
  return status;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

// Everything the demo creates, torn down on every exit path: children first, then the broker, then the files.
struct Run {
  fs::path dir;
  std::string segment;  // the broker's shared-memory segment, named as `weightbusd --help` documents
  Child broker{0, "weightbusd"};
  Child reader{0, "reader"};
  Child publisher{0, "publisher"};
  ~Run() {
    for (Child *c : {&publisher, &reader})
      if (c->pid) stop(*c, SIGKILL, kStopMs);
    if (broker.pid) stop(broker, SIGTERM, kStopMs);
    // A broker that stops cleanly removes its segment; one that crashed or was killed cannot. The name is
    // unique to this demo, so nobody else's segment goes.
    if (!segment.empty()) shm_unlink(segment.c_str());
    remove_dir();
  }
  void remove_dir() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
    dir.clear();
  }
};

// The last lines of the broker's log, for messages about a broker that failed.
std::string log_tail(const fs::path &log) {
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string tail = "\nweightbusd's output:";
  if (lines.empty()) return tail + " empty";
  for (size_t k = lines.size() > 15 ? lines.size() - 15 : 0; k < lines.size(); ++k) tail += "\n  " + lines[k];
  return tail;
}

// Build tree: tools/weightbus/weightbus and broker/weightbusd; installed: both in bin/. Then $PATH.
std::string find_weightbusd(const std::optional<std::string> &given) {
  if (given) return *given;
  std::error_code ec;
  const fs::path self_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const fs::path &p : {self_dir / "../../broker/weightbusd", self_dir / "weightbusd"})
    if (!ec && access(p.c_str(), X_OK) == 0) return p.lexically_normal().string();
  const char *path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const fs::path p = fs::path(dirs.substr(start, end - start)) / "weightbusd";
    if (end > start && access(p.c_str(), X_OK) == 0) return p.string();
    start = end + 1;
  }
  throw std::runtime_error("demo: cannot find weightbusd next to this program or on $PATH; pass --weightbusd PATH");
}

fs::path make_temp_dir() {
  // A socket path must fit in 108 bytes, so a very long $TMPDIR is not used.
  const char *tmp = std::getenv("TMPDIR");
  std::string pattern = (tmp && *tmp && std::strlen(tmp) < 60 ? std::string(tmp) : "/tmp") + "/weightbus-demo-XXXXXX";
  if (!mkdtemp(pattern.data())) fail_errno("demo: create a temporary directory");
  return pattern;
}

pid_t start_broker(const std::string &exe, const std::string &name, const Config &c, const fs::path &log) {
  const pid_t pid = fork();
  if (pid < 0) fail_errno("demo: fork");
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // a demo killed with -9 must not leave its broker behind
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) dup2(fd, STDOUT_FILENO), dup2(fd, STDERR_FILENO);  // its log would drown the demo's lines
  execl(exe.c_str(), "weightbusd", "--foreground", "--socket", c.socket.c_str(), "--name", name.c_str(),
        static_cast<char *>(nullptr));
  dprintf(STDERR_FILENO, "exec %s: %s\n", exe.c_str(), std::strerror(errno));
  _exit(127);
}

void wait_for_socket(Run &run, const Config &c, const fs::path &log) {
  const int64_t deadline = monotonic_ms() + kStartupMs;
  struct stat st {};
  while (stat(c.socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    int status = 0;
    if (reaped(run.broker, &status)) throw std::runtime_error("demo: weightbusd " + describe(status) + log_tail(log));
    if (g_interrupted) throw std::runtime_error("demo: interrupted");
    if (monotonic_ms() > deadline)
      throw std::runtime_error("demo: weightbusd did not create " + c.socket + " within " + std::to_string(kStartupMs) +
                               " ms" + log_tail(log));
    sleep_ms(10);
  }
}

// Runs body in a child process. The child exits from here and never unwinds into the caller's frames, whose
// destructors (Run) belong to the parent.
pid_t spawn(const std::function<int()> &body) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) fail_errno("demo: fork");
  if (pid > 0) return pid;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);  // signalling a dead peer must fail with EPIPE and say so, not kill silently
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
  int status = 1;
  try {
    status = body();
  } catch (...) {
    status = report_current_exception();
  }
  _exit(status);
}

// Waits for the publisher and the reader. When one fails the other is stopped at once (by Run), since it
// would otherwise wait for its peer until its own timeout. Both are reaped before reporting, so that the message
// names the one that failed first as well as the one that failed because of it.
void wait_for_clients(Run &run, int64_t deadline) {
  while (run.publisher.pid || run.reader.pid) {
    std::string failures;
    for (Child *c : {&run.publisher, &run.reader}) {
      int status = 0;
      if (!reaped(*c, &status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) continue;
      failures += std::string(failures.empty() ? "" : "; ") + "the " + c->who + " " + describe(status);
    }
    if (!failures.empty()) throw std::runtime_error("demo: " + failures);
    if (g_interrupted) throw std::runtime_error("demo: interrupted");
    if (monotonic_ms() > deadline)
      throw std::runtime_error("demo: the publisher and the reader did not finish in time");
    sleep_ms(5);
  }
}

Signal make_signal() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) fail_errno("demo: pipe");
  return {fds[0], fds[1]};
}

void close_signal(const Signal &s) {
  close(s.read);
  close(s.write);
}

void start_clients(Run &run, Config &c) {
  c.topic_ready = make_signal();
  c.reader_ready = make_signal();
  run.reader.pid = spawn([&c] { return reader_main(c); });
  run.publisher.pid = spawn([&c] { return publisher_main(c); });
  // The children hold their ends; ours would keep a dead child's end open and hide its death from the other.
  close_signal(c.topic_ready);
  close_signal(c.reader_ready);
}

// What `weightbus ls` would say about the topic now, as the demo's closing evidence.
void summarize(const Config &c) {
  weightbus::Client client = attach_to(c.socket, "weightbus demo", kStartupMs);
  const weightbus::Topic topic = open_topic(client, kTopic);
  const wb_topic_info info = doing("demo: describe topic 'policy'", [&] { return topic.info(); });
  say("demo", "topic \"policy\" is at version " + std::to_string(info.latest) + ": " +
                  std::to_string(info.tensor_count) + " tensors, " + std::to_string(info.replicas) + " replicas, " +
                  human_bytes(info.bytes) + " of shared memory");
}

void stop_broker(Run &run, const fs::path &log) {
  const std::optional<int> status = stop(run.broker, SIGTERM, kStopMs);
  if (!status)
    throw std::runtime_error("demo: weightbusd did not exit within " + std::to_string(kStopMs) + " ms of SIGTERM" +
                             log_tail(log));
  const bool clean =
      (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) || (WIFSIGNALED(*status) && WTERMSIG(*status) == SIGTERM);
  if (!clean) throw std::runtime_error("demo: weightbusd " + describe(*status) + " when asked to stop" + log_tail(log));
}

int run_demo(const GlobalOptions &g, Args &args) {
  Config c;
  c.versions = args.integer("--versions", 1, 1000000).value_or(c.versions);
  c.interval_ms = args.integer("--interval-ms", 0, 60000).value_or(c.interval_ms);
  const std::optional<std::string> given = args.value("--weightbusd");
  args.positionals(0, 0);
  if (g.json) throw UsageError("demo prints text for people; --json is not supported");
  const std::string exe = find_weightbusd(given);
  signal(SIGINT, on_interrupt);  // clean up (children, broker, temp dir) instead of dying on Ctrl-C
  signal(SIGTERM, on_interrupt);
  Run run;
  run.dir = make_temp_dir();
  c.socket = (run.dir / "demo.sock").string();
  const fs::path log = run.dir / "weightbusd.log";
  out_line("weightbus demo: a broker, a publisher and a reader on this machine.");
  out_line("  The publisher (think: a trainer) writes every weight of a small model and publishes it as a version;");
  out_line("  the reader (think: an inference server) waits for each version, leases it and checks every element.");
  const std::string name = "demo-" + std::to_string(getpid());
  run.segment = "/weightbus-" + std::to_string(getuid()) + "-" + name;
  run.broker.pid = start_broker(exe, name, c, log);
  wait_for_socket(run, c, log);
  say("demo", "started the broker " + exe + " (pid " + std::to_string(run.broker.pid) + ") on " + c.socket);
  start_clients(run, c);
  wait_for_clients(run, monotonic_ms() + 2 * kStartupMs + c.versions * (c.interval_ms + 1000));
  summarize(c);
  stop_broker(run, log);
  const std::string dir = run.dir.string();
  run.remove_dir();
  say("demo", "stopped the broker and removed " + dir);
  say("demo", "success: " + std::to_string(c.versions) + " versions published and read back intact.");
  out_line(
      "Next: start a broker with `weightbusd`, then try `weightbus ls -l`, `weightbus watch TOPIC` and "
      "`weightbus clients` while your programs publish; `weightbus stop` stops it.");
  return 0;
}

}  // namespace

const Command kDemoCommand = {
    "demo",
    "run a broker, a publisher and a reader and show versions flowing",
    "weightbus demo [--versions N] [--interval-ms MS] [--weightbusd PATH]",
    R"HELP(Start a private broker in a temporary directory, then two processes: a publisher that creates topic
"policy" (2 replicas, 4 f32 tensors of [256, 256]) and publishes N versions, writing the step number into
every element and {"step": k} as metadata; and a reader that waits for each version, leases it and checks
that every element equals the step. Then stop the broker and remove the directory. Every step has a
timeout, so the demo ends on its own. Exits 0 when every version was read back intact.
The global --socket and --name do not apply: the demo's broker is its own.

options:
  --versions N        versions to publish (default 5)
  --interval-ms MS    pause between versions (default 200)
  --weightbusd PATH   the broker executable (default: next to this program, else on $PATH)

examples:
  weightbus demo
  weightbus demo --versions 100 --interval-ms 0
)HELP",
    "versions: interval-ms: weightbusd:",
    run_demo,
};

}  // namespace wbcli
