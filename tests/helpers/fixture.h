/*
 * fixture.h — what every weightbus test shares: a private broker per test, child processes with timeouts,
 * shared memory to coordinate with them, and the data pattern that makes a torn or stale byte visible.
 *
 * Functions return 0 / a WB_* code and never assert, so that forked children can use them too; the parent
 * checks results with FX_OK / FX_EXPECT (cmocka), a child with CHILD_OK / CHILD_EXPECT (exit code).
 */
#ifndef WEIGHTBUS_TESTS_FIXTURE_H
#define WEIGHTBUS_TESTS_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "weightbus/weightbus.h"

/* ---- assertions --------------------------------------------------------------------------------------- */

/* Fails the cmocka test with the call, both codes and wb_last_error(). A failure must also leave a message. */
#define FX_EXPECT(call, want)                                                                                 \
  do {                                                                                                        \
    int fx_rc_ = (call);                                                                                      \
    int fx_want_ = (want);                                                                                    \
    if (fx_rc_ != fx_want_) {                                                                                 \
      fail_msg("%s:%d: %s returned %d (%s), expected %d (%s); wb_last_error: \"%s\"", __FILE__, __LINE__,     \
               #call, fx_rc_, wb_strerror(fx_rc_), fx_want_, wb_strerror(fx_want_), wb_last_error());         \
    }                                                                                                         \
    if (fx_want_ != WB_OK && wb_last_error()[0] == '\0') {                                                    \
      fail_msg("%s:%d: %s failed with %s as expected but wb_last_error() is empty", __FILE__, __LINE__,       \
               #call, wb_strerror(fx_rc_));                                                                   \
    }                                                                                                         \
  } while (0)
#define FX_OK(call) FX_EXPECT(call, WB_OK)

/* The same for code running in a forked child: print and return 1 from the child function. */
#define CHILD_EXPECT(call, want)                                                                              \
  do {                                                                                                        \
    int fx_rc_ = (call);                                                                                      \
    int fx_want_ = (want);                                                                                    \
    if (fx_rc_ != fx_want_) {                                                                                 \
      fprintf(stderr, "child %d: %s:%d: %s returned %d (%s), expected %d (%s); wb_last_error: \"%s\"\n",      \
              (int)getpid(), __FILE__, __LINE__, #call, fx_rc_, wb_strerror(fx_rc_), fx_want_,                \
              wb_strerror(fx_want_), wb_last_error());                                                        \
      return 1;                                                                                               \
    }                                                                                                         \
  } while (0)
#define CHILD_OK(call) CHILD_EXPECT(call, WB_OK)
#define CHILD_CHECK(cond)                                                                                     \
  do {                                                                                                        \
    if (!(cond)) {                                                                                            \
      fprintf(stderr, "child %d: %s:%d: check failed: %s\n", (int)getpid(), __FILE__, __LINE__, #cond);       \
      return 1;                                                                                               \
    }                                                                                                         \
  } while (0)

/* ---- time --------------------------------------------------------------------------------------------- */

int64_t fx_now_ms(void); /* CLOCK_MONOTONIC, shared by all processes of the machine */
void fx_sleep_ms(int64_t ms);

/* ---- broker ------------------------------------------------------------------------------------------- */

/* Capacities and per-client limits passed to weightbusd, and how it runs; 0 (NULL) leaves the default. */
typedef struct fx_broker_opts {
  uint32_t max_topics;
  uint32_t max_tensors;
  uint32_t max_allocations;
  uint32_t max_clients;
  uint32_t leases_per_client;
  uint32_t ring_slots;
  uint32_t max_topics_per_client;
  uint32_t max_tensors_per_client;
  uint32_t max_allocations_per_client;
  uint64_t max_bytes_per_client;
  uint32_t max_subscriptions_per_client;
  uint32_t nofile;      /* RLIMIT_NOFILE (soft and hard) of the broker's process */
  const char *log_path; /* the broker's stderr (its log) goes to this file, appended */
  uint32_t max_ranks;   /* --max-ranks: Rank entries of sharded topics, all together */
} fx_broker_opts;

typedef struct fx_broker {
  pid_t pid; /* 0 once reaped */
  int exit_status; /* waitpid status once reaped */
  char dir[64];
  char socket_path[128];
  char name[64];
} fx_broker;

/* Starts weightbusd ($WEIGHTBUSD, else the path CMake compiled in) in a fresh temp dir with a unique --name
 * and waits (at most 10 s) until its socket accepts. Returns 0, or -1 with a reason on stderr. */
int fx_broker_start(fx_broker *b, const fx_broker_opts *opts);
/* Sends sig, then waits at most timeout_ms for the exit. Returns 0 when it exited in time. */
int fx_broker_signal_and_wait(fx_broker *b, int sig, int timeout_ms);
/* SIGTERM with a 5 s bound (then SIGKILL), and removes the socket, temp dir and shm segment. Idempotent.
 * Returns -1, naming each object on stderr, when a broker whose last exit was a clean stop left shared memory
 * behind (a leak); 0 otherwise (a broker killed with SIGKILL leaves it by design, removed here quietly). */
int fx_broker_stop(fx_broker *b);
/* SIGKILL and reap: the broker dies without cleaning up. */
void fx_broker_kill9(fx_broker *b);
/* Starts a new weightbusd with the same name and socket as b's dead one (after fx_broker_kill9), which adopts
 * the segment it left. 0, or -1 with a reason on stderr (b is then stopped and cleaned up). */
int fx_broker_restart(fx_broker *b);
/* The weightbusd binary the fixture runs. */
const char *fx_broker_path(void);

/* cmocka setup/teardown: a broker per test in *state. The setup takes an fx_broker_opts* as prestate
 * (cmocka_unit_test_prestate_setup_teardown) or NULL for defaults. The teardown fails the test when the
 * broker leaked shared memory (fx_broker_stop). */
int fx_setup(void **state);
int fx_teardown(void **state);

/* wb_attach to the broker's socket, labelled with client_name (may be NULL). */
int fx_attach(const fx_broker *b, const char *client_name, wb_client **out);
/* The same with wb_attach_options.timeout_ms: also how long a client waits for a successor broker. */
int fx_attach_timeout(const fx_broker *b, const char *client_name, int64_t timeout_ms, wb_client **out);

/* ---- child processes ---------------------------------------------------------------------------------- */

typedef int (*fx_child_fn)(void *arg);
/* Forks; the child runs fn(arg) and _exits with its return value. Returns the pid (or -1). */
pid_t fx_spawn(fx_child_fn fn, void *arg);
/* Waits at most timeout_ms; on timeout kills the child with SIGKILL. Returns the exit code, 128 + signal if
 * it was killed by a signal, or -1 on timeout. */
int fx_wait_child(pid_t pid, int timeout_ms);
/* SIGKILL and reap. */
void fx_kill9(pid_t pid);

/* ---- coordination ------------------------------------------------------------------------------------- */

/* Zeroed memory shared with children forked afterwards. */
void *fx_shared_alloc(size_t size);
void fx_shared_free(void *p, size_t size);
/* Polls until *word >= value; 0, or -1 after timeout_ms. */
int fx_wait_word(const uint32_t *word, uint32_t value, int timeout_ms);
void fx_set_word(uint32_t *word, uint32_t value);

/* ---- data --------------------------------------------------------------------------------------------- */

/* Element i of tensor t as written by version v: differs between versions and tensors, so that a stale or
 * torn element never matches. */
static inline uint32_t fx_pattern(uint64_t v, uint32_t t, uint64_t i) { return (uint32_t)(v * 7 + t + i); }
void fx_fill_u32(void *data, uint64_t count, uint64_t v, uint32_t t);
/* Index of the first element that differs from the pattern, or -1. */
int64_t fx_check_u32(const void *data, uint64_t count, uint64_t v, uint32_t t);

/* Fills buf (len + 1 bytes) with a name of len bytes and returns it: for the WB_NAME_MAX boundaries. */
const char *fx_name_of_length(char *buf, size_t len);

/* The common topic of the tests: tensors "t0".."t<n-1>", each u32[elems] (n <= 8). */
int fx_create_topic(wb_client *c, const char *name, uint32_t replicas, uint32_t n, uint32_t elems,
                    wb_topic **out);
/* Writes the tensors "t<i>" whose bit i is set in mask with fx_pattern(version, i, .) and publishes; the
 * metadata is the 8-byte version. *version receives the published version (may be NULL). */
int fx_publish(wb_topic *t, uint32_t mask, uint32_t elems, uint64_t *version);
/* ---- sharded topics ------------------------------------------------------------------------------------ */

/* Creates or joins sharded topic name as rank `rank` of `ranks`, with `replicas` replicas. */
int fx_create_rank(wb_client *c, const char *name, uint32_t replicas, uint32_t rank, uint32_t ranks,
                   wb_topic **out);
/* A 2-D shard spec: rows [row0, row0 + rows) and columns [col0, col0 + cols) of logical [lrows, lcols]. */
wb_shard_spec fx_shard_2d(const char *name, int32_t dtype, int64_t lrows, int64_t lcols, int64_t row0, int64_t rows,
                          int64_t col0, int64_t cols);
/* Rows [row0, row0 + rows) of a 1-D logical tensor of lrows elements. */
wb_shard_spec fx_shard_1d(const char *name, int32_t dtype, int64_t lrows, int64_t row0, int64_t rows);
/* A plan's destination of u32 elements checked against the reference slices of version v: part j of dest (1-D
 * or 2-D, parts[dest->first_part ..]) holds, at logical (row, col) of tensor tensor_ids[j], fx_pattern(v,
 * tensor_ids[j], row * logical_cols[tensor] + col) (logical_cols 1 for a 1-D tensor), each part after the
 * previous along concat_dim, its pad zero; the destination's strides, when given, place the rows. Returns the
 * first element (offset in dst, in elements) that differs, or -1; *part (may be NULL) is then the part's index. */
int64_t fx_check_dest(const wb_slice_dest *dest, const wb_slice_part *parts, const uint32_t *tensor_ids,
                      const int64_t *logical_cols, uint64_t v, uint32_t *part);

/* Fails the cmocka test unless wb_last_error() contains every one of the NULL-terminated substrings. */
void fx_expect_message(const char *first, ...);

/* fx_create_topic, retried while WB_E_BUSY for at most 5 s: a new publisher taking over from one that died
 * waits for the broker to notice the death. */
int fx_take_over(wb_client *c, const char *name, uint32_t replicas, uint32_t n, uint32_t elems, wb_topic **out);

/* Child for the crash tests: attaches, creates topic "model" with n tensors of elems u32, publishes
 * `versions` versions writing every tensor, then begins the next, writes the first half of t0 through
 * wb_update_tensor, sets *half_written to 1 and waits to be killed. */
typedef struct fx_doomed_publisher {
  const fx_broker *broker;
  uint32_t replicas, tensors, elems, versions;
  uint32_t *half_written; /* in fx_shared_alloc memory */
} fx_doomed_publisher;
int fx_doomed_publisher_main(void *arg);

/* 0 when snapshot tensor "t<i>" holds fx_pattern(v, i, .) and its info.version is v; else -1 with a reason
 * on stderr. */
int fx_check_tensor(wb_snapshot *s, uint32_t i, uint32_t elems, uint64_t v);

#endif /* WEIGHTBUS_TESTS_FIXTURE_H */
