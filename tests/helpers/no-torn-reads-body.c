/* Body of test-no-torn-reads-r1.c and -r2.c, which define REPLICAS and include it.
 *
 * No torn reads under load: one publisher process and four reader processes, 10,000 versions. Every version
 * rewrites every element of the tensors it changes (t0 always, t1 every 3rd, t2 every 7th version); a reader
 * holding a lease on version v must see each tensor exactly as the version that last changed it up to v
 * wrote it, and wb_tensor_info.version must name that version. */
#include "fixture.h"

#ifndef REPLICAS
#error "define REPLICAS before including this file"
#endif

#define VERSIONS 10000
#define READERS 4
#define NTENSORS 3

static const char *const names[NTENSORS] = {"t0", "t1", "t2"};
static const int32_t dtypes[NTENSORS] = {WB_DTYPE_U32, WB_DTYPE_U32, WB_DTYPE_F32};
static const uint32_t elems[NTENSORS] = {4096, 3000, 2048};

typedef struct result {
  uint64_t checked;  /* distinct versions checked */
  uint64_t torn;     /* snapshots with any wrong element, version or metadata */
  uint64_t last;
  char first_error[256];
} result;

typedef struct shared {
  uint32_t topic_ready;
  uint32_t readers_ready;
  result readers[READERS];
} shared;

typedef struct arg {
  fx_broker *broker;
  shared *sh;
  int index;
} arg;

static int changes(uint32_t t, uint64_t v) {
  return v == 1 || t == 0 || (t == 1 && v % 3 == 0) || (t == 2 && v % 7 == 0);
}

/* The version that last wrote tensor t as of version v. */
static uint64_t last_change(uint32_t t, uint64_t v) {
  while (!changes(t, v)) --v;
  return v;
}

/* Exact in f32: values stay below 2^24. */
static float pattern_f32(uint64_t v, uint32_t t, uint64_t i) { return (float)fx_pattern(v, t, i); }

static int publisher(void *p) {
  arg *a = p;
  wb_client *c;
  wb_topic *t;
  CHILD_OK(fx_attach(a->broker, "stress-publisher", &c));
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = REPLICAS;
  CHILD_OK(wb_topic_create(c, "stress", &o, &t));
  wb_tensor_spec specs[NTENSORS];
  for (uint32_t i = 0; i < NTENSORS; ++i) {
    wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
    s.name = names[i];
    s.dtype = dtypes[i];
    s.ndim = 1;
    s.shape[0] = elems[i];
    specs[i] = s;
  }
  CHILD_OK(wb_tensor_alloc(t, specs, NTENSORS));
  fx_set_word(&a->sh->topic_ready, 1);
  CHILD_CHECK(fx_wait_word(&a->sh->readers_ready, READERS, 30000) == 0);

  for (uint64_t v = 1; v <= VERSIONS; ++v) {
    wb_update *u;
    uint64_t uv, published;
    CHILD_OK(wb_update_begin(t, 10000, &u));
    CHILD_OK(wb_update_version(u, &uv));
    CHILD_CHECK(uv == v);
    for (uint32_t i = 0; i < NTENSORS; ++i) {
      if (!changes(i, v)) continue;
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      CHILD_OK(wb_update_tensor(u, names[i], &info));
      if (dtypes[i] == WB_DTYPE_F32) {
        float *f = info.data;
        for (uint32_t k = 0; k < elems[i]; ++k) f[k] = pattern_f32(v, i, k);
      } else {
        fx_fill_u32(info.data, elems[i], v, i);
      }
    }
    CHILD_OK(wb_update_publish(u, &v, sizeof(v), &published));
    CHILD_CHECK(published == v);
  }
  CHILD_OK(wb_detach(c));
  return 0;
}

/* Checks one snapshot; returns 0 or -1 with a description in err. */
static int check_snapshot(wb_snapshot *s, uint64_t sv, char *err, size_t errlen) {
  const void *meta;
  uint32_t size;
  uint64_t ts;
  if (wb_snapshot_metadata(s, &meta, &size, &ts) != WB_OK || size != sizeof(uint64_t)) {
    snprintf(err, errlen, "version %llu: metadata size %u", (unsigned long long)sv, size);
    return -1;
  }
  uint64_t mv;
  memcpy(&mv, meta, sizeof(mv));
  if (mv != sv) {
    snprintf(err, errlen, "version %llu carries the metadata of version %llu", (unsigned long long)sv, (unsigned long long)mv);
    return -1;
  }
  for (uint32_t i = 0; i < NTENSORS; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    int rc = wb_snapshot_tensor(s, names[i], &info);
    if (rc != WB_OK) {
      snprintf(err, errlen, "version %llu: wb_snapshot_tensor(%s) = %s", (unsigned long long)sv, names[i], wb_strerror(rc));
      return -1;
    }
    uint64_t w = last_change(i, sv);
    if (info.version != w) {
      snprintf(err, errlen, "version %llu: %s says version %llu, expected %llu", (unsigned long long)sv, names[i],
               (unsigned long long)info.version, (unsigned long long)w);
      return -1;
    }
    for (uint32_t k = 0; k < elems[i]; ++k) {
      int ok = dtypes[i] == WB_DTYPE_F32 ? ((const float *)info.data)[k] == pattern_f32(w, i, k)
                                         : ((const uint32_t *)info.data)[k] == fx_pattern(w, i, k);
      if (!ok) {
        snprintf(err, errlen, "version %llu: %s[%u] is not version %llu's value (torn read)", (unsigned long long)sv,
                 names[i], k, (unsigned long long)w);
        return -1;
      }
    }
  }
  return 0;
}

static int reader(void *p) {
  arg *a = p;
  result *r = &a->sh->readers[a->index];
  wb_client *c;
  wb_topic *t;
  CHILD_CHECK(fx_wait_word(&a->sh->topic_ready, 1, 30000) == 0);
  CHILD_OK(fx_attach(a->broker, "stress-reader", &c));
  CHILD_OK(wb_topic_open(c, "stress", &t));
  __atomic_add_fetch(&a->sh->readers_ready, 1, __ATOMIC_ACQ_REL);
  uint64_t last = 0;
  while (last < VERSIONS) {
    uint64_t v, sv;
    wb_snapshot *s;
    CHILD_OK(wb_topic_wait(t, last, 10000, &v));
    CHILD_CHECK(v > last);
    CHILD_OK(wb_snapshot_acquire(t, 0, 10000, &s));
    CHILD_OK(wb_snapshot_version(s, &sv));
    CHILD_CHECK(sv >= v); /* acquiring the latest never goes back */
    char err[256];
    if (check_snapshot(s, sv, err, sizeof(err)) != 0) {
      if (r->torn++ == 0) snprintf(r->first_error, sizeof(r->first_error), "%s", err);
    }
    CHILD_OK(wb_snapshot_release(s));
    r->checked++;
    r->last = last = sv;
  }
  CHILD_OK(wb_detach(c));
  return 0;
}

static void readers_never_see_torn_versions(void **state) {
  fx_broker *b = *state;
  shared *sh = fx_shared_alloc(sizeof(shared));
  assert_non_null(sh);
  arg args[READERS + 1];
  pid_t pids[READERS + 1];
  int64_t t0 = fx_now_ms();
  for (int i = 0; i <= READERS; ++i) {
    args[i].broker = b;
    args[i].sh = sh;
    args[i].index = i;
    pids[i] = fx_spawn(i == READERS ? publisher : reader, &args[i]);
    assert_true(pids[i] > 0);
  }
  int status[READERS + 1];
  int64_t deadline = t0 + 240000; /* below the ctest TIMEOUT, so that a hang is reported here */
  for (int i = READERS; i >= 0; --i) {
    int64_t left = deadline - fx_now_ms();
    status[i] = fx_wait_child(pids[i], left > 1 ? (int)left : 1);
  }
  int64_t elapsed = fx_now_ms() - t0;
  print_message("R = %d: %d versions in %lld ms\n", REPLICAS, VERSIONS, (long long)elapsed);
  for (int i = 0; i < READERS; ++i) {
    result *r = &sh->readers[i];
    print_message("reader %d: %llu versions checked, %llu torn, last %llu\n", i, (unsigned long long)r->checked,
                  (unsigned long long)r->torn, (unsigned long long)r->last);
  }
  if (status[READERS] != 0) fail_msg("publisher exited with %d (see its stderr)", status[READERS]);
  for (int i = 0; i < READERS; ++i) {
    result *r = &sh->readers[i];
    if (r->torn != 0) fail_msg("reader %d: %llu torn snapshots; first: %s", i, (unsigned long long)r->torn, r->first_error);
    if (status[i] != 0) fail_msg("reader %d exited with %d (see its stderr)", i, status[i]);
    if (r->checked <= 100) fail_msg("reader %d checked only %llu versions", i, (unsigned long long)r->checked);
    assert_int_equal(r->last, VERSIONS);
  }
  fx_shared_free(sh, sizeof(shared));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(readers_never_see_torn_versions, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
