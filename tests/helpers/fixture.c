#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#ifndef WB_TEST_BROKER
#define WB_TEST_BROKER "weightbusd"
#endif

/* ---- time --------------------------------------------------------------------------------------------- */

int64_t fx_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fx_sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- processes ---------------------------------------------------------------------------------------- */

/* waitpid with a bound. Returns 1 when reaped (status filled), 0 on timeout. */
static int wait_bounded(pid_t pid, int timeout_ms, int *status) {
  int64_t deadline = fx_now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return 1;
    if (r < 0 && errno != EINTR) {
      *status = 0;
      return 1; /* not our child any more: nothing to wait for */
    }
    if (fx_now_ms() >= deadline) return 0;
    fx_sleep_ms(2);
  }
}

/* Children die with the test process, so that a crashed test leaves no broker or publisher behind. */
static void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(126);
}

pid_t fx_spawn(fx_child_fn fn, void *arg) {
  pid_t parent = getpid();
  fflush(NULL); /* or buffered output would be printed twice */
  pid_t pid = fork();
  if (pid != 0) return pid;
  die_with_parent(parent);
  /* cmocka's handlers would longjmp into the copy of the test runner: crash like a normal process instead. */
  const int sigs[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGABRT, SIGSYS, SIGALRM};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); ++i) signal(sigs[i], SIG_DFL);
  int rc = fn(arg);
  fflush(NULL);
  _exit(rc & 0xff);
}

int fx_wait_child(pid_t pid, int timeout_ms) {
  int status = 0;
  if (!wait_bounded(pid, timeout_ms, &status)) {
    fprintf(stderr, "fixture: child %d still running after %d ms: killed\n", (int)pid, timeout_ms);
    fx_kill9(pid);
    return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void fx_kill9(pid_t pid) {
  int status;
  kill(pid, SIGKILL);
  wait_bounded(pid, 5000, &status);
}

/* ---- broker ------------------------------------------------------------------------------------------- */

/* 0 once something accepts connections at path. SOCK_SEQPACKET is what the protocol uses. */
static int probe_socket(const char *path) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len >= sizeof(addr.sun_path)) return -1;
  memcpy(addr.sun_path, path, len + 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
  close(fd);
  return rc;
}

/* The shared-memory objects of broker `name` still in /dev/shm: its segment and its host allocations
 * (<segment>.a<N>). A killed broker leaves them for a restarted broker to adopt; one that stopped cleanly has
 * removed them. Removes them and returns how many there were; leaked != 0 names each on stderr as a leak. */
static int remove_shared_memory(const char *name, int leaked) {
  char prefix[160];
  int len = snprintf(prefix, sizeof(prefix), "weightbus-%u-%s", (unsigned)getuid(), name);
  int found = 0;
  DIR *dir = opendir("/dev/shm");
  struct dirent *entry;
  while (dir != NULL && (entry = readdir(dir)) != NULL) {
    const char *rest = entry->d_name + len;
    if (strncmp(entry->d_name, prefix, (size_t)len) != 0 || (rest[0] != '\0' && strncmp(rest, ".a", 2) != 0)) continue;
    if (leaked) {
      fprintf(stderr, "fixture: %s: broker %s stopped cleanly but left /dev/shm/%s behind\n",
              program_invocation_short_name, name, entry->d_name);
    }
    char path[300];
    snprintf(path, sizeof(path), "/%s", entry->d_name);
    shm_unlink(path);
    ++found;
  }
  if (dir != NULL) closedir(dir);
  return found;
}

/* Removes what the broker leaves behind; returns how many shared-memory objects remained (see above). */
static int cleanup_files(fx_broker *b, int leaked) {
  if (b->dir[0] == '\0') return 0;
  int found = remove_shared_memory(b->name, leaked);
  unlink(b->socket_path);
  rmdir(b->dir);
  b->dir[0] = '\0';
  return found;
}

const char *fx_broker_path(void) {
  const char *exe = getenv("WEIGHTBUSD");
  return exe != NULL && exe[0] != '\0' ? exe : WB_TEST_BROKER;
}

/* In the broker's child before exec: its descriptor limit and log, as opts asks. */
static void prepare_broker_process(const fx_broker_opts *opts) {
  if (opts == NULL) return;
  if (opts->log_path != NULL) { /* first: the test may have more descriptors open than nofile allows */
    int fd = open(opts->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) perror("fixture: opening the broker's log");
    if (fd >= 0) close(fd);
  }
  if (opts->nofile != 0) {
    struct rlimit limit = {opts->nofile, opts->nofile};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) perror("fixture: setrlimit RLIMIT_NOFILE");
  }
}

/* Starts weightbusd on b's socket and name and waits until it accepts. */
static int launch(fx_broker *b, const fx_broker_opts *opts) {
  const char *exe = fx_broker_path();
  const char *level = getenv("WB_TEST_LOG_LEVEL");
  char values[12][24];
  const char *argv[32];
  int n = 0;
  argv[n++] = exe;
  argv[n++] = "--foreground";
  argv[n++] = "--socket";
  argv[n++] = b->socket_path;
  argv[n++] = "--name";
  argv[n++] = b->name;
  argv[n++] = "--log-level";
  argv[n++] = level != NULL ? level : "warn";
  if (opts != NULL) {
    const char *flags[12] = {"--max-topics",  "--max-tensors",       "--max-allocations",
                             "--max-clients", "--leases-per-client", "--ring-slots",
                             "--max-topics-per-client", "--max-tensors-per-client",
                             "--max-allocations-per-client", "--max-bytes-per-client",
                             "--max-subscriptions-per-client", "--max-ranks"};
    const uint64_t given[12] = {opts->max_topics,  opts->max_tensors,       opts->max_allocations,
                                opts->max_clients, opts->leases_per_client, opts->ring_slots,
                                opts->max_topics_per_client, opts->max_tensors_per_client,
                                opts->max_allocations_per_client, opts->max_bytes_per_client,
                                opts->max_subscriptions_per_client, opts->max_ranks};
    for (int i = 0; i < 12; ++i) {
      if (given[i] == 0) continue;
      snprintf(values[i], sizeof(values[i]), "%llu", (unsigned long long)given[i]);
      argv[n++] = flags[i];
      argv[n++] = values[i];
    }
  }
  argv[n] = NULL;

  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fixture: fork");
    cleanup_files(b, 0);
    return -1;
  }
  if (pid == 0) {
    die_with_parent(parent);
    prepare_broker_process(opts);
    execv(exe, (char *const *)argv);
    fprintf(stderr, "fixture: cannot run %s: %s\n", exe, strerror(errno));
    _exit(127);
  }
  b->pid = pid;

  int64_t deadline = fx_now_ms() + 10000;
  for (;;) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      fprintf(stderr, "fixture: %s exited before accepting (status 0x%x)\n", exe, (unsigned)status);
      b->pid = 0;
      cleanup_files(b, 0);
      return -1;
    }
    if (probe_socket(b->socket_path) == 0) return 0;
    if (fx_now_ms() >= deadline) {
      fprintf(stderr, "fixture: %s did not accept on %s within 10 s\n", exe, b->socket_path);
      fx_broker_kill9(b);
      cleanup_files(b, 0);
      return -1;
    }
    fx_sleep_ms(5);
  }
}

int fx_broker_start(fx_broker *b, const fx_broker_opts *opts) {
  static unsigned counter;
  memset(b, 0, sizeof(*b));
  snprintf(b->dir, sizeof(b->dir), "/tmp/wbtest-XXXXXX");
  if (mkdtemp(b->dir) == NULL) {
    perror("fixture: mkdtemp");
    b->dir[0] = '\0';
    return -1;
  }
  snprintf(b->socket_path, sizeof(b->socket_path), "%s/broker.sock", b->dir);
  snprintf(b->name, sizeof(b->name), "test-%d-%u", (int)getpid(), ++counter);
  return launch(b, opts);
}

int fx_broker_restart(fx_broker *b) {
  if (b->pid != 0 || b->dir[0] == '\0') return -1;
  return launch(b, NULL);
}

int fx_broker_signal_and_wait(fx_broker *b, int sig, int timeout_ms) {
  if (b->pid == 0) return 0;
  kill(b->pid, sig);
  if (!wait_bounded(b->pid, timeout_ms, &b->exit_status)) return -1;
  b->pid = 0;
  return 0;
}

void fx_broker_kill9(fx_broker *b) {
  if (b->pid == 0) return;
  kill(b->pid, SIGKILL);
  if (wait_bounded(b->pid, 5000, &b->exit_status)) b->pid = 0;
}

int fx_broker_stop(fx_broker *b) {
  if (b->pid != 0 && fx_broker_signal_and_wait(b, SIGTERM, 5000) != 0) {
    fprintf(stderr, "fixture: broker %d ignored SIGTERM for 5 s: killed\n", (int)b->pid);
    fx_broker_kill9(b);
  }
  /* Its last exit was a clean stop (SIGTERM or SIGINT, here or by the test): nothing of it may remain. */
  int clean = b->pid == 0 && WIFEXITED(b->exit_status) && WEXITSTATUS(b->exit_status) == 0;
  return cleanup_files(b, clean) > 0 && clean ? -1 : 0;
}

int fx_setup(void **state) {
  const fx_broker_opts *opts = *state;
  fx_broker *b = calloc(1, sizeof(*b));
  if (b == NULL) return -1;
  if (fx_broker_start(b, opts) != 0) {
    free(b);
    return -1;
  }
  *state = b;
  return 0;
}

int fx_teardown(void **state) {
  fx_broker *b = *state;
  int rc = 0;
  if (b != NULL) {
    rc = fx_broker_stop(b);
    free(b);
  }
  *state = NULL;
  return rc;
}

int fx_attach(const fx_broker *b, const char *client_name, wb_client **out) {
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  return fx_attach_timeout(b, client_name, o.timeout_ms, out);
}

int fx_attach_timeout(const fx_broker *b, const char *client_name, int64_t timeout_ms, wb_client **out) {
  wb_attach_options o = WB_ATTACH_OPTIONS_INIT;
  o.socket_path = b->socket_path;
  o.client_name = client_name;
  o.timeout_ms = timeout_ms;
  return wb_attach(&o, out);
}

/* ---- coordination ------------------------------------------------------------------------------------- */

void *fx_shared_alloc(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void fx_shared_free(void *p, size_t size) {
  if (p != NULL) munmap(p, size);
}

int fx_wait_word(const uint32_t *word, uint32_t value, int timeout_ms) {
  int64_t deadline = fx_now_ms() + timeout_ms;
  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) < value) {
    if (fx_now_ms() >= deadline) return -1;
    fx_sleep_ms(1);
  }
  return 0;
}

void fx_set_word(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }

/* ---- data --------------------------------------------------------------------------------------------- */

void fx_fill_u32(void *data, uint64_t count, uint64_t v, uint32_t t) {
  uint32_t *p = data;
  for (uint64_t i = 0; i < count; ++i) p[i] = fx_pattern(v, t, i);
}

int64_t fx_check_u32(const void *data, uint64_t count, uint64_t v, uint32_t t) {
  const uint32_t *p = data;
  for (uint64_t i = 0; i < count; ++i) {
    if (p[i] != fx_pattern(v, t, i)) return (int64_t)i;
  }
  return -1;
}

int64_t fx_check_dest(const wb_slice_dest *dest, const wb_slice_part *parts, const uint32_t *tensor_ids,
                      const int64_t *logical_cols, uint64_t v, uint32_t *part) {
  const uint32_t *got = dest->dst;
  const int two = dest->ndim == 2, cd = (int)dest->concat_dim;
  const int64_t stride = two ? (dest->strides[0] != 0 ? dest->strides[0] : dest->shape[1]) : 1;
  int64_t at = 0; /* where the part starts along concat_dim */
  for (uint32_t j = dest->first_part; j < dest->first_part + dest->part_count; ++j) {
    const wb_slice_part *p = &parts[j];
    const uint32_t t = tensor_ids[j];
    const int64_t ext1 = two ? p->extent[1] : 1, off1 = two ? p->offset[1] : 0;
    const int64_t rows = p->extent[0] + (cd == 0 ? p->pad : 0), cols = ext1 + (cd == 1 ? p->pad : 0);
    for (int64_t a = 0; a < rows; ++a) {
      for (int64_t b = 0; b < cols; ++b) {
        const int64_t at_elem = (a + (cd == 0 ? at : 0)) * stride + b + (cd == 1 ? at : 0);
        const uint32_t want = a < p->extent[0] && b < ext1
                                  ? fx_pattern(v, t, (uint64_t)((p->offset[0] + a) * logical_cols[t] + off1 + b))
                                  : 0;
        if (got[at_elem] != want) {
          if (part != NULL) *part = j;
          return at_elem;
        }
      }
    }
    at += cd == 0 ? rows : cols;
  }
  return -1;
}

const char *fx_name_of_length(char *buf, size_t len) {
  for (size_t i = 0; i < len; ++i) buf[i] = (char)('a' + i % 26);
  buf[len] = '\0';
  return buf;
}

static void tensor_name(char buf[8], uint32_t i) { snprintf(buf, 8, "t%u", i); }

int fx_create_topic(wb_client *c, const char *name, uint32_t replicas, uint32_t n, uint32_t elems,
                    wb_topic **out) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = replicas;
  int rc = wb_topic_create(c, name, &o, out);
  if (rc != WB_OK || n == 0) return rc;
  char names[8][8];
  wb_tensor_spec specs[8];
  for (uint32_t i = 0; i < n && i < 8; ++i) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    tensor_name(names[i], i);
    s.dtype = WB_DTYPE_U32;
    s.name = names[i];
    s.ndim = 1;
    s.shape[0] = elems;
    specs[i] = s;
  }
  return wb_tensor_alloc(*out, specs, n);
}

int fx_create_rank(wb_client *c, const char *name, uint32_t replicas, uint32_t rank, uint32_t ranks,
                   wb_topic **out) {
  wb_rank_options o = WB_RANK_OPTIONS_INIT;
  o.replicas = replicas;
  o.rank = rank;
  o.ranks = ranks;
  return wb_topic_create_rank(c, name, &o, out);
}

wb_shard_spec fx_shard_2d(const char *name, int32_t dtype, int64_t lrows, int64_t lcols, int64_t row0, int64_t rows,
                          int64_t col0, int64_t cols) {
  wb_shard_spec s = WB_SHARD_SPEC_INIT;
  s.name = name;
  s.dtype = dtype;
  s.ndim = 2;
  s.logical_shape[0] = lrows;
  s.logical_shape[1] = lcols;
  s.offset[0] = row0;
  s.offset[1] = col0;
  s.extent[0] = rows;
  s.extent[1] = cols;
  return s;
}

wb_shard_spec fx_shard_1d(const char *name, int32_t dtype, int64_t lrows, int64_t row0, int64_t rows) {
  wb_shard_spec s = WB_SHARD_SPEC_INIT;
  s.name = name;
  s.dtype = dtype;
  s.ndim = 1;
  s.logical_shape[0] = lrows;
  s.offset[0] = row0;
  s.extent[0] = rows;
  return s;
}

int fx_publish(wb_topic *t, uint32_t mask, uint32_t elems, uint64_t *version) {
  wb_update *u;
  uint64_t v;
  int rc = wb_update_begin(t, 5000, &u);
  if (rc != WB_OK) return rc;
  rc = wb_update_version(u, &v);
  if (rc != WB_OK) return rc;
  for (uint32_t i = 0; i < 8; ++i) {
    if (!(mask & (1u << i))) continue;
    char name[8];
    tensor_name(name, i);
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    rc = wb_update_tensor(u, name, &info);
    if (rc != WB_OK) return rc;
    if (info.data == NULL || info.nbytes < (uint64_t)elems * 4) {
      fprintf(stderr, "fixture: wb_update_tensor(%s) gave data %p, nbytes %llu\n", name, info.data,
              (unsigned long long)info.nbytes);
      return WB_E_SIZE;
    }
    fx_fill_u32(info.data, elems, v, i);
  }
  uint64_t published = 0;
  rc = wb_update_publish(u, &v, sizeof(v), &published);
  if (rc == WB_OK && published != v) {
    fprintf(stderr, "fixture: published version %llu, update said %llu\n", (unsigned long long)published,
            (unsigned long long)v);
    return WB_E_STATE;
  }
  if (version != NULL) *version = published;
  return rc;
}

int fx_check_tensor(wb_snapshot *s, uint32_t i, uint32_t elems, uint64_t v) {
  char name[8];
  tensor_name(name, i);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_snapshot_tensor(s, name, &info);
  if (rc != WB_OK) {
    fprintf(stderr, "fx_check_tensor: wb_snapshot_tensor(%s) = %s: %s\n", name, wb_strerror(rc), wb_last_error());
    return -1;
  }
  if (info.version != v) {
    fprintf(stderr, "fx_check_tensor: %s has info.version %llu, expected %llu\n", name,
            (unsigned long long)info.version, (unsigned long long)v);
    return -1;
  }
  if (info.data == NULL) {
    fprintf(stderr, "fx_check_tensor: %s has data NULL\n", name);
    return -1;
  }
  int64_t bad = fx_check_u32(info.data, elems, v, i);
  if (bad >= 0) {
    fprintf(stderr, "fx_check_tensor: %s[%lld] = %u, expected %u (version %llu)\n", name, (long long)bad,
            ((const uint32_t *)info.data)[bad], fx_pattern(v, i, (uint64_t)bad), (unsigned long long)v);
    return -1;
  }
  return 0;
}

int fx_take_over(wb_client *c, const char *name, uint32_t replicas, uint32_t n, uint32_t elems, wb_topic **out) {
  int64_t deadline = fx_now_ms() + 5000;
  for (;;) {
    int rc = fx_create_topic(c, name, replicas, n, elems, out);
    if (rc != WB_E_BUSY || fx_now_ms() >= deadline) return rc;
    fx_sleep_ms(10);
  }
}

int fx_doomed_publisher_main(void *arg) {
  const fx_doomed_publisher *d = arg;
  wb_client *c;
  wb_topic *t;
  wb_update *u;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  uint64_t v;
  CHILD_OK(fx_attach(d->broker, "doomed-publisher", &c));
  CHILD_OK(fx_create_topic(c, "model", d->replicas, d->tensors, d->elems, &t));
  for (uint32_t i = 0; i < d->versions; ++i) CHILD_OK(fx_publish(t, (1u << d->tensors) - 1, d->elems, NULL));
  CHILD_OK(wb_update_begin(t, 5000, &u));
  CHILD_OK(wb_update_version(u, &v));
  CHILD_OK(wb_update_tensor(u, "t0", &info));
  fx_fill_u32(info.data, d->elems / 2, v, 0);
  fx_set_word(d->half_written, 1);
  for (;;) pause();
}
