#include "security.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

int sec_can_be_nobody(void) {
  if (geteuid() != 0) {
    print_message("skipped: needs root, to act as uid %u (CI runs the tests as root)\n", SEC_NOBODY);
    return 0;
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    print_message("skipped: /usr/bin/setpriv is missing (util-linux)\n");
    return 0;
  }
  return 1;
}

int sec_become_nobody(void) {
  if (setgroups(0, NULL) != 0 || setgid(SEC_NOBODY) != 0 || setuid(SEC_NOBODY) != 0) return -1;
  return 0;
}

static pid_t spawn_broker(const char *socket, const char *name, const char *xdg, int as_nobody, int err_fd) {
  const char *argv[16];
  int n = 0;
  if (as_nobody) {
    argv[n++] = "/usr/bin/setpriv";
    argv[n++] = "--reuid=65534";
    argv[n++] = "--regid=65534";
    argv[n++] = "--clear-groups";
  }
  argv[n++] = fx_broker_path();
  argv[n++] = "--foreground";
  argv[n++] = "--name";
  argv[n++] = name;
  argv[n++] = "--log-level";
  argv[n++] = "warn";
  if (socket != NULL) {
    argv[n++] = "--socket";
    argv[n++] = socket;
  }
  argv[n] = NULL;
  fflush(NULL);
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (err_fd >= 0) dup2(err_fd, 2);
  unsetenv("WEIGHTBUS_SOCKET");
  if (socket == NULL && xdg != NULL) setenv("XDG_RUNTIME_DIR", xdg, 1);
  execv(argv[0], (char *const *)argv);
  fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

int sec_start_broker(const char *socket, const char *name, int as_nobody) {
  return spawn_broker(socket, name, NULL, as_nobody, -1);
}

int sec_run_broker(const char *socket, const char *name, const char *xdg, int as_nobody, char *err, size_t errlen) {
  char log[] = "/tmp/wbsec-log-XXXXXX";
  int fd = mkstemp(log);
  if (fd < 0) return -2;
  unlink(log);
  pid_t pid = spawn_broker(socket, name, xdg, as_nobody, fd);
  int status = 0, code = -1;
  int64_t deadline = fx_now_ms() + 10000;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (fx_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    fx_sleep_ms(10);
  }
  if (status != -1 && WIFEXITED(status)) code = WEXITSTATUS(status);
  ssize_t got = pread(fd, err, errlen - 1, 0);
  err[got > 0 ? got : 0] = '\0';
  close(fd);
  print_message("weightbusd exited with %d: %s", code, err);
  return code;
}

int sec_temp_dir(char *dir) {
  strcpy(dir, "/tmp/wbsec-XXXXXX");
  return mkdtemp(dir) != NULL ? 0 : -1;
}

const char *sec_shm_path(char *path, unsigned uid, const char *name, const char *suffix) {
  snprintf(path, 256, "/dev/shm/weightbus-%u-%s%s", uid, name, suffix);
  return path;
}

void sec_remove_shm(unsigned uid, const char *name) {
  char path[256], suffix[8];
  unlink(sec_shm_path(path, uid, name, ""));
  for (int a = 0; a < 16; ++a) {
    snprintf(suffix, sizeof(suffix), ".a%d", a);
    unlink(sec_shm_path(path, uid, name, suffix));
  }
}

void sec_expect_text(const char *text, ...) {
  va_list ap;
  va_start(ap, text);
  for (const char *needle = va_arg(ap, const char *); needle != NULL; needle = va_arg(ap, const char *)) {
    if (strstr(text, needle) == NULL) fail_msg("\"%s\" lacks \"%s\"", text, needle);
  }
  va_end(ap);
}
