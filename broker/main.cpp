// weightbusd: parses flags, daemonizes unless --foreground, and runs the server.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "descriptors.hpp"
#include "log.hpp"
#include "options.hpp"
#include "server.hpp"
#include "socket_dir.hpp"

namespace {

// A daemonized broker's log: its socket's path + ".log", opened before forking so that a failure is reported
// on the terminal. The socket's directory is created first, as the server would, so that the first broker on
// a machine logs too. Returns the descriptor, or -1 after printing why.
int open_log(const wb::broker::Options &options, std::string *log_path) {
  std::string socket_path = options.socket_path;
  char path[4096];
  if (socket_path.empty()) {
    if (wb_default_socket_path(options.name.c_str(), path, sizeof(path)) != WB_OK) {
      fprintf(stderr, "weightbusd: %s\n", wb_last_error());
      return -1;
    }
    socket_path = path;
  }
  *log_path = socket_path + ".log";
  if (wb::broker::prepare_directory(socket_path) != WB_OK) {
    fprintf(stderr, "weightbusd: %s\n", wb_last_error());
    return -1;
  }
  int fd = open(log_path->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) fprintf(stderr, "weightbusd: cannot open the log %s: %s\n", log_path->c_str(), strerror(errno));
  return fd;
}

// Forks into the background; the parent exits once the child listens (or failed), so that
// `weightbusd && client` never races the socket's creation.
int daemonize(const wb::broker::Options &options, int *ready_fd) {
  std::string log_path;
  int logfd = open_log(options, &log_path);
  int ready[2];
  if (logfd < 0 || pipe(ready) != 0) return 1;
  pid_t child = fork();
  if (child < 0) return perror("weightbusd: fork"), 1;
  if (child > 0) {
    close(ready[1]);
    char byte;
    bool ok = read(ready[0], &byte, 1) == 1;
    if (!ok) fprintf(stderr, "weightbusd: the broker failed to start; see its log %s\n", log_path.c_str());
    _exit(ok ? 0 : 1);
  }
  close(ready[0]);
  setsid();
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  dup2(devnull, STDIN_FILENO);
  dup2(devnull, STDOUT_FILENO);
  dup2(logfd, STDERR_FILENO);
  *ready_fd = ready[1];
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  wb::broker::Options options;
  bool exit_now;
  int status = wb::broker::parse_options(argc, argv, &options, &exit_now);
  if (exit_now) return status;
  wb::broker::set_log_level(options.log_level);
  wb::broker::raise_descriptor_limit();
  signal(SIGPIPE, SIG_IGN);  // a reader that closed its notify pipe must not kill the broker
  int ready_fd = -1;
  if (!options.foreground && daemonize(options, &ready_fd) != 0) return 1;
  wb::broker::log_to_journal_if_stderr_is_it();  // after daemonize: its stderr is its log file
  wb::broker::Server server(options);
  return server.run(ready_fd);
}
