/* Publish -> wake latency between two processes, for weightbus's two ways of waiting and for the floor under
 * both, a raw shared futex:
 *
 *   notify-latency [--iterations N]          prints CSV: path,iterations,p50_us,p99_us,p999_us,mean_us
 *
 *   wait    the reader blocks in wb_topic_wait; the publisher calls wb_update_publish (of an update of no
 *           tensor, begun before t0: begin precedes the writes of a real update, the publish ends them)
 *   fd      the reader blocks in poll() on wb_topic_notify_fd, then calls wb_topic_notify_ack
 *   futex   the reader blocks in FUTEX_WAIT on a shared word; the "publisher" bumps it and FUTEX_WAKEs
 *
 * Each iteration the publisher sleeps 50-250 us (so the reader is asleep, as a server between updates is),
 * takes t0 (CLOCK_MONOTONIC) and publishes; the reader takes t1 when it wakes and records t1 - t0. The
 * publisher waits for the reader's record before the next iteration. */
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

#include "fixture.h"

typedef struct shared {
  uint64_t t0;
  uint32_t word;  /* the futex path's word */
  uint32_t done;  /* iterations the reader recorded */
  uint32_t ready;
  uint64_t latency_ns[];
} shared;

typedef struct job {
  const fx_broker *broker;
  shared *sh;
  uint32_t iterations;
  const char *path;
} job;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(shared *sh, uint32_t i) {
  sh->latency_ns[i] = now_ns() - __atomic_load_n(&sh->t0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&sh->done, i + 1, __ATOMIC_SEQ_CST);
}

static int futex_reader(job *j) {
  __atomic_store_n(&j->sh->ready, 1, __ATOMIC_SEQ_CST);
  for (uint32_t i = 0; i < j->iterations; ++i) {
    while (__atomic_load_n(&j->sh->word, __ATOMIC_SEQ_CST) == i) {
      syscall(SYS_futex, &j->sh->word, FUTEX_WAIT, i, NULL, NULL, 0);
    }
    record(j->sh, i);
  }
  return 0;
}

static int weightbus_reader(job *j) {
  wb_client *c;
  wb_topic *t;
  int fd = -1;
  CHILD_OK(fx_attach(j->broker, "notify-reader", &c));
  CHILD_OK(wb_topic_open(c, j->path, &t));
  if (strcmp(j->path, "fd") == 0) CHILD_OK(wb_topic_notify_fd(t, &fd));
  __atomic_store_n(&j->sh->ready, 1, __ATOMIC_SEQ_CST);
  uint64_t seen = 0;
  for (uint32_t i = 0; i < j->iterations; ++i) {
    if (fd < 0) {
      CHILD_OK(wb_topic_wait(t, seen, 10000, &seen));
    } else {
      while (seen <= i) {
        struct pollfd p = {fd, POLLIN, 0};
        CHILD_CHECK(poll(&p, 1, 10000) == 1);
        CHILD_OK(wb_topic_notify_ack(t, &seen));
      }
    }
    record(j->sh, i);
  }
  wb_detach(c);
  return 0;
}

static int reader_main(void *arg) {
  job *j = arg;
  return strcmp(j->path, "futex") == 0 ? futex_reader(j) : weightbus_reader(j);
}

static void pause_between(unsigned *seed) {
  struct timespec pause = {0, 50000 + (long)(rand_r(seed) % 200000)};
  nanosleep(&pause, NULL);
}

static int await_record(shared *sh, uint32_t i) {
  int64_t deadline = fx_now_ms() + 10000;
  while (__atomic_load_n(&sh->done, __ATOMIC_SEQ_CST) <= i) {
    if (fx_now_ms() > deadline) return -1;
  }
  return 0;
}

static int publish_all(job *j, wb_topic *t) {
  unsigned seed = 7;
  for (uint32_t i = 0; i < j->iterations; ++i) {
    pause_between(&seed);
    wb_update *u = NULL;
    if (t != NULL && wb_update_begin(t, 1000, &u) != WB_OK) return -1;
    __atomic_store_n(&j->sh->t0, now_ns(), __ATOMIC_SEQ_CST);
    if (t != NULL) {
      if (wb_update_publish(u, NULL, 0, NULL) != WB_OK) return -1;
    } else {
      __atomic_store_n(&j->sh->word, i + 1, __ATOMIC_SEQ_CST);
      syscall(SYS_futex, &j->sh->word, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    if (await_record(j->sh, i) != 0) return -1;
  }
  return 0;
}

static int compare(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *path, uint64_t *ns, uint32_t n) {
  qsort(ns, n, sizeof(ns[0]), compare);
  double sum = 0;
  for (uint32_t i = 0; i < n; ++i) sum += (double)ns[i];
  printf("%s,%u,%.2f,%.2f,%.2f,%.2f\n", path, n, ns[n / 2] / 1e3, ns[(uint64_t)n * 99 / 100] / 1e3,
         ns[(uint64_t)n * 999 / 1000] / 1e3, sum / n / 1e3);
  fflush(stdout);
}

static int run_path(const fx_broker *b, const char *path, uint32_t iterations) {
  size_t size = sizeof(shared) + iterations * sizeof(uint64_t);
  shared *sh = fx_shared_alloc(size);
  job j = {b, sh, iterations, path};
  wb_client *c = NULL;
  wb_topic *t = NULL;
  if (strcmp(path, "futex") != 0) {
    wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
    if (fx_attach(b, "notify-publisher", &c) != WB_OK || wb_topic_create(c, path, &o, &t) != WB_OK) return -1;
  }
  pid_t reader = fx_spawn(reader_main, &j);
  int rc = fx_wait_word(&sh->ready, 1, 10000);
  if (rc == 0) rc = publish_all(&j, t);
  if (rc == 0) rc = fx_wait_child(reader, 10000);
  if (rc == 0) report(path, sh->latency_ns, iterations);
  if (c != NULL) wb_detach(c);
  fx_shared_free(sh, size);
  return rc;
}

int main(int argc, char **argv) {
  uint32_t iterations = argc > 2 && strcmp(argv[1], "--iterations") == 0 ? (uint32_t)atoi(argv[2]) : 10000;
  fx_broker b;
  if (iterations == 0 || fx_broker_start(&b, NULL) != 0) {
    fprintf(stderr, "usage: notify-latency [--iterations N] (N > 0); a broker must start\n");
    return 2;
  }
  printf("path,iterations,p50_us,p99_us,p999_us,mean_us\n");
  int rc = 0;
  const char *paths[] = {"futex", "wait", "fd"};
  for (size_t i = 0; i < 3 && rc == 0; ++i) {
    rc = run_path(&b, paths[i], iterations);
    if (rc != 0) fprintf(stderr, "notify-latency: the %s path failed: %s\n", paths[i], wb_last_error());
  }
  fx_broker_stop(&b);
  return rc == 0 ? 0 : 1;
}
