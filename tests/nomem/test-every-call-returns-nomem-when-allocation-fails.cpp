// No exception leaves the library, and running out of memory inside a call is WB_E_NOMEM: a session of two
// clients (a publisher and a reader of host tensors, with every kind of call) is run once per allocation that
// each call makes, that allocation failing (fail_nth_allocation.hpp). Each time the call must return WB_OK or
// WB_E_NOMEM with a message saying which call ran out of memory (never an exception, never an abort); after
// WB_E_NOMEM the same call without the failure succeeds; and the rest of the session then runs as usual, its
// reads checked against what was published. The broker runs as its own process, so only the library's
// allocations fail. Under ASan (build-asan, ASAN_OPTIONS=detect_leaks=1) nothing leaks either.
#include <poll.h>
#include <weightbus/dlpack_versioned.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "fail_nth_allocation.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace {

constexpr uint32_t kElems = 64;
constexpr uint32_t kHead = 16;        // elements of the view "t1.head"
constexpr uint64_t kVersion = 7;      // what the publisher publishes (wb_update_set_version)
constexpr int kDataWrong = -1000;     // a step's own check failed (it says why on stderr)
constexpr uint32_t kMaxTopics = 1024; // of each broker; a session creates two

// What a session holds, step by step.
struct Session {
  const fx_broker *broker = nullptr;
  char model[32] = {};    // the topic names of this session: every session makes its own afresh
  char scratch[32] = {};
  wb_client *pub = nullptr;
  wb_client *reader = nullptr;
  wb_topic *published = nullptr;
  wb_topic *read = nullptr;
  wb_topic *second = nullptr;
  wb_topic *scratch_topic = nullptr;
  wb_update *update = nullptr;
  wb_update *scratch_update = nullptr;
  wb_snapshot *snapshot = nullptr;
  DLManagedTensor *update_export = nullptr;
  DLManagedTensor *snapshot_export = nullptr;
  DLManagedTensorVersioned *versioned_export = nullptr;
  int notify_fd = -1;
};

int data_wrong(const char *what) {
  fprintf(stderr, "check failed: %s\n", what);
  return kDataWrong;
}

wb_tensor_spec spec(const char *name) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = WB_DTYPE_U32;
  s.ndim = 1;
  s.shape[0] = kElems;
  return s;
}

int write_tensor(wb_update *u, uint32_t i, bool by_index) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  const char *names[] = {"t0", "t1"};
  int rc = by_index ? wb_update_tensor_at(u, i, &info) : wb_update_tensor(u, names[i], &info);
  if (rc == WB_OK) fx_fill_u32(info.data, kElems, kVersion, i);
  return rc;
}

int read_tensor(wb_snapshot *s, const char *name, uint32_t t, uint64_t count) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_snapshot_tensor(s, name, &info);
  if (rc != WB_OK) return rc;
  return fx_check_u32(info.data, count, kVersion, t) == -1 ? WB_OK : data_wrong("snapshot tensor bytes");
}

// ---- the steps: each makes one public call (the DLPack deleters excepted, which return nothing) ----

int default_socket_path(Session &) {
  char path[256];
  return wb_default_socket_path("nomem", path, sizeof(path));
}
int attach_publisher(Session &s) { return fx_attach(s.broker, "publisher", &s.pub); }
int client_id(Session &s) {
  uint32_t id = 0;
  return wb_client_id(s.pub, &id);
}
int create_model(Session &s) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  return wb_topic_create(s.pub, s.model, &o, &s.published);
}
int alloc_tensors(Session &s) {
  wb_tensor_spec specs[] = {spec("t0"), spec("t1")};
  return wb_tensor_alloc(s.published, specs, 2);
}
int add_view(Session &s) {
  wb_view_spec v = WB_VIEW_SPEC_INIT;
  v.name = "t1.head";
  v.parent = "t1";
  v.dtype = WB_DTYPE_U32;
  v.ndim = 1;
  v.shape[0] = kHead;
  v.strides[0] = 1;
  return wb_tensor_view(s.published, &v);
}
int topic_info(Session &s) {
  wb_topic_info info = WB_TOPIC_INFO_INIT;
  return wb_topic_get_info(s.published, &info);
}
int tensor_count(Session &s) {
  uint32_t count = 0;
  int rc = wb_topic_tensor_count(s.published, &count);
  return rc != WB_OK || count == 3 ? rc : data_wrong("tensor count");
}
int topic_tensor(Session &s) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_topic_tensor(s.published, 2, &info);
  return rc != WB_OK || strcmp(info.name, "t1.head") == 0 ? rc : data_wrong("tensor 2 is the view");
}
int attach_reader(Session &s) { return fx_attach(s.broker, "reader", &s.reader); }
int open_model(Session &s) { return wb_topic_open(s.reader, s.model, &s.read); }
int notify_fd(Session &s) { return wb_topic_notify_fd(s.read, &s.notify_fd); }
int begin(Session &s) { return wb_update_begin(s.published, 1000, &s.update); }
int set_version(Session &s) { return wb_update_set_version(s.update, kVersion); }
int update_version(Session &s) {
  uint64_t v = 0;
  int rc = wb_update_version(s.update, &v);
  return rc != WB_OK || v == kVersion ? rc : data_wrong("the update's version");
}
int write_t0(Session &s) { return write_tensor(s.update, 0, false); }
int write_t1(Session &s) { return write_tensor(s.update, 1, true); }
int export_update_versioned(Session &s) {
  return wb_update_dlpack_versioned(s.update, "t0", &s.versioned_export);
}
int export_snapshot_versioned(Session &s) {
  return wb_snapshot_dlpack_versioned(s.snapshot, "t1", &s.versioned_export);
}
int delete_versioned_export(Session &s) {
  s.versioned_export->deleter(s.versioned_export);
  s.versioned_export = nullptr;
  return WB_OK;
}
int export_update(Session &s) { return wb_update_dlpack(s.update, "t0", &s.update_export); }
int delete_update_export(Session &s) {
  s.update_export->deleter(s.update_export);
  s.update_export = nullptr;
  return WB_OK;
}
int publish(Session &s) {
  uint64_t v = 0;
  int rc = wb_update_publish(s.update, &kVersion, sizeof(kVersion), &v);
  if (rc == WB_OK) s.update = nullptr;
  return rc != WB_OK || v == kVersion ? rc : data_wrong("the published version");
}
int notified(Session &s) {  // not a call: the publish woke the reader's notify fd
  pollfd pfd{s.notify_fd, POLLIN, 0};
  return poll(&pfd, 1, 5000) == 1 ? WB_OK : data_wrong("the notify fd is readable after the publish");
}
int notify_ack(Session &s) {
  uint64_t v = 0;
  int rc = wb_topic_notify_ack(s.read, &v);
  return rc != WB_OK || v == kVersion ? rc : data_wrong("notify_ack's latest");
}
int latest(Session &s) {
  uint64_t v = 0;
  int rc = wb_topic_latest(s.read, &v);
  return rc != WB_OK || v == kVersion ? rc : data_wrong("latest");
}
int wait(Session &s) {
  uint64_t v = 0;
  int rc = wb_topic_wait(s.read, 0, 1000, &v);
  return rc != WB_OK || v == kVersion ? rc : data_wrong("wait");
}
int acquire(Session &s) { return wb_snapshot_acquire(s.read, 0, 1000, &s.snapshot); }
int snapshot_version(Session &s) {
  uint64_t v = 0;
  int rc = wb_snapshot_version(s.snapshot, &v);
  return rc != WB_OK || v == kVersion ? rc : data_wrong("the snapshot's version");
}
int metadata(Session &s) {
  const void *data = nullptr;
  uint32_t size = 0;
  int rc = wb_snapshot_metadata(s.snapshot, &data, &size, nullptr);
  if (rc != WB_OK) return rc;
  return size == sizeof(kVersion) && memcmp(data, &kVersion, size) == 0 ? WB_OK : data_wrong("metadata");
}
int snapshot_t0(Session &s) { return read_tensor(s.snapshot, "t0", 0, kElems); }
int snapshot_view(Session &s) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_snapshot_tensor_at(s.snapshot, 2, &info);
  if (rc != WB_OK) return rc;
  return fx_check_u32(info.data, kHead, kVersion, 1) == -1 ? WB_OK : data_wrong("the view's bytes");
}
int snapshot_all(Session &s) {
  wb_tensor_info infos[8];
  for (wb_tensor_info &info : infos) info = WB_TENSOR_INFO_INIT;
  uint32_t count = 0;
  int rc = wb_snapshot_tensors(s.snapshot, infos, 8, &count);
  if (rc != WB_OK) return rc;
  return count == 3 && fx_check_u32(infos[2].data, kHead, kVersion, 1) == -1 ? WB_OK : data_wrong("every tensor");
}
int snapshot_place(Session &s) {
  uint64_t place = 0;
  return wb_snapshot_place(s.snapshot, &place);
}
int copy_into(Session &s) {
  uint32_t t0[kElems], t1[kElems];
  wb_copy_target targets[2] = {WB_COPY_TARGET_INIT, WB_COPY_TARGET_INIT};
  targets[0].name = "t0";
  targets[0].dst = t0;
  targets[0].dst_bytes = sizeof(t0);
  targets[1].index = 1;
  targets[1].dst = t1;
  targets[1].dst_bytes = sizeof(t1);
  int rc = wb_snapshot_copy_into(s.snapshot, targets, 2, nullptr);
  if (rc != WB_OK) return rc;
  bool right = fx_check_u32(t0, kElems, kVersion, 0) == -1 && fx_check_u32(t1, kElems, kVersion, 1) == -1;
  return right ? WB_OK : data_wrong("copied bytes");
}
int export_snapshot(Session &s) { return wb_snapshot_dlpack(s.snapshot, "t1", &s.snapshot_export); }
int list_topics(Session &s) {
  wb_topic_info infos[4] = {WB_TOPIC_INFO_INIT, WB_TOPIC_INFO_INIT, WB_TOPIC_INFO_INIT, WB_TOPIC_INFO_INIT};
  uint32_t count = 0;
  return wb_list_topics(s.reader, infos, 4, &count);
}
int list_clients(Session &s) {
  wb_client_info infos[4] = {WB_CLIENT_INFO_INIT, WB_CLIENT_INFO_INIT, WB_CLIENT_INFO_INIT, WB_CLIENT_INFO_INIT};
  uint32_t count = 0;
  return wb_list_clients(s.reader, infos, 4, &count);
}
int list_leases(Session &s) {
  wb_lease_info infos[4] = {WB_LEASE_INFO_INIT, WB_LEASE_INFO_INIT, WB_LEASE_INFO_INIT, WB_LEASE_INFO_INIT};
  uint32_t count = 0;
  int rc = wb_list_leases(s.pub, infos, 4, &count);
  return rc != WB_OK || count == 1 ? rc : data_wrong("one lease is listed");
}
int broker_info(Session &s) {
  wb_broker_info info = WB_BROKER_INFO_INIT;
  int rc = wb_broker_get_info(s.reader, &info);
  return rc != WB_OK || info.clients >= 2 ? rc : data_wrong("both clients of the session are counted");
}
int release(Session &s) {
  int rc = wb_snapshot_release(s.snapshot);
  if (rc == WB_OK) s.snapshot = nullptr;
  return rc;
}
int delete_snapshot_export(Session &s) {  // the last reference: ends the lease
  s.snapshot_export->deleter(s.snapshot_export);
  s.snapshot_export = nullptr;
  return WB_OK;
}
int open_second(Session &s) { return wb_topic_open(s.reader, s.model, &s.second); }
int close_second(Session &s) {
  int rc = wb_topic_close(s.second);
  if (rc == WB_OK) s.second = nullptr;
  return rc;
}
int create_scratch(Session &s) {
  wb_topic_options o = WB_TOPIC_OPTIONS_INIT;
  o.replicas = 1;
  return wb_topic_create(s.pub, s.scratch, &o, &s.scratch_topic);
}
int begin_scratch(Session &s) { return wb_update_begin(s.scratch_topic, 1000, &s.scratch_update); }
int close_scratch(Session &s) {  // aborts its open update
  int rc = wb_topic_close(s.scratch_topic);
  if (rc == WB_OK) s.scratch_topic = nullptr;
  return rc;
}
int remove_scratch(Session &s) { return wb_topic_remove(s.pub, s.scratch); }  // closed: unused
int abort_update(Session &s) {
  int rc = wb_update_abort(s.update);
  if (rc == WB_OK) s.update = nullptr;
  return rc;
}
int detach_reader(Session &s) {  // with its topic open and a snapshot held
  int rc = wb_detach(s.reader);
  if (rc == WB_OK) s.reader = nullptr;
  return rc;
}
int detach_publisher(Session &s) {  // with its topic open and an update begun
  int rc = wb_detach(s.pub);
  if (rc == WB_OK) s.pub = nullptr;
  return rc;
}

struct Step {
  const char *call;  // what the step calls, for the report
  int (*run)(Session &);
};

const Step kSteps[] = {
    {"wb_default_socket_path", default_socket_path},
    {"wb_attach", attach_publisher},
    {"wb_client_id", client_id},
    {"wb_topic_create", create_model},
    {"wb_tensor_alloc", alloc_tensors},
    {"wb_tensor_view", add_view},
    {"wb_topic_get_info", topic_info},
    {"wb_topic_tensor_count", tensor_count},
    {"wb_topic_tensor", topic_tensor},
    {"wb_attach", attach_reader},
    {"wb_topic_open", open_model},
    {"wb_topic_notify_fd", notify_fd},
    {"wb_update_begin", begin},
    {"wb_update_set_version", set_version},
    {"wb_update_version", update_version},
    {"wb_update_tensor", write_t0},
    {"wb_update_tensor_at", write_t1},
    {"wb_update_dlpack", export_update},
    {"DLManagedTensor::deleter", delete_update_export},
    {"wb_update_dlpack_versioned", export_update_versioned},
    {"DLManagedTensorVersioned::deleter", delete_versioned_export},
    {"wb_update_publish", publish},
    {"(notify fd readable)", notified},
    {"wb_topic_notify_ack", notify_ack},
    {"wb_topic_latest", latest},
    {"wb_topic_wait", wait},
    {"wb_snapshot_acquire", acquire},
    {"wb_snapshot_version", snapshot_version},
    {"wb_snapshot_metadata", metadata},
    {"wb_snapshot_tensor", snapshot_t0},
    {"wb_snapshot_tensor_at", snapshot_view},
    {"wb_snapshot_tensors", snapshot_all},
    {"wb_snapshot_place", snapshot_place},
    {"wb_snapshot_copy_into", copy_into},
    {"wb_snapshot_dlpack", export_snapshot},
    {"wb_snapshot_dlpack_versioned", export_snapshot_versioned},
    {"DLManagedTensorVersioned::deleter", delete_versioned_export},
    {"wb_list_topics", list_topics},
    {"wb_list_clients", list_clients},
    {"wb_list_leases", list_leases},
    {"wb_broker_get_info", broker_info},
    {"wb_snapshot_release", release},
    {"DLManagedTensor::deleter", delete_snapshot_export},
    {"wb_topic_open", open_second},
    {"wb_topic_close", close_second},
    {"wb_topic_create", create_scratch},
    {"wb_update_begin", begin_scratch},
    {"wb_topic_close", close_scratch},
    {"wb_topic_remove", remove_scratch},
    {"wb_update_begin", begin},
    {"wb_update_abort", abort_update},
    {"wb_update_begin", begin},
    {"wb_snapshot_acquire", acquire},
    {"wb_detach", detach_reader},
    {"wb_detach", detach_publisher},
};
constexpr size_t kStepCount = sizeof(kSteps) / sizeof(kSteps[0]);

// The broker of the sessions, replaced by a fresh one before its topic table fills up (stopped by the teardown,
// which also runs when a check fails: cmocka's failures do not unwind the stack).
struct Broker {
  fx_broker b{};
  uint32_t sessions = 0;
  unsigned long long total = 0;  // sessions over all brokers, naming their topics

  void next_session(Session *s) {
    if (b.pid == 0 || 2 * (sessions + 1) > kMaxTopics) {
      fx_broker_stop(&b);
      fx_broker_opts o{};
      o.max_topics = kMaxTopics;
      o.ring_slots = 2;
      assert_int_equal(fx_broker_start(&b, &o), 0);
      sessions = 0;
    }
    ++sessions;
    ++total;
    *s = Session{};
    s->broker = &b;
    snprintf(s->model, sizeof(s->model), "model-%llu", total);
    snprintf(s->scratch, sizeof(s->scratch), "scratch-%llu", total);
  }
};
Broker broker;

int stop_broker(void **) {
  fx_broker_stop(&broker.b);
  return 0;
}

// Runs step k with allocation fail_at failing (0: none, counting only); returns its code and *made the
// allocations it made. An exception leaving the library fails the test.
int run_step(Session &s, size_t k, uint64_t fail_at, uint64_t *made) {
  int rc = WB_OK;
  bool escaped = false;
  wb::test::arm_allocation_failure(fail_at);
  try {
    rc = kSteps[k].run(s);
  } catch (...) {
    escaped = true;
  }
  *made = wb::test::disarm_allocation_failure();
  if (escaped) {
    fail_msg("step %zu (%s): an exception left the library when allocation %llu of the call failed", k,
             kSteps[k].call, (unsigned long long)fail_at);
  }
  return rc;
}

void expect_ok(int rc, size_t k, const char *when) {
  if (rc != WB_OK) {
    fail_msg("step %zu (%s) %s: %d (%s): %s", k, kSteps[k].call, when, rc, wb_strerror(rc), wb_last_error());
  }
}

// Runs the steps from `from` on without failures, each expected to succeed: the session is usable.
void run_rest(Session &s, size_t from, const char *when) {
  for (size_t k = from; k < kStepCount; ++k) {
    uint64_t made = 0;
    expect_ok(run_step(s, k, 0, &made), k, when);
  }
}

// A session in which step k's allocation fail_at fails. Returns whether the failure happened (the call made
// that many allocations).
bool session_failing(size_t k, uint64_t fail_at) {
  Session s;
  broker.next_session(&s);
  for (size_t i = 0; i < k; ++i) {
    uint64_t made = 0;
    expect_ok(run_step(s, i, 0, &made), i, "before the failure");
  }
  uint64_t made = 0;
  int rc = run_step(s, k, fail_at, &made);
  if (rc == WB_E_NOMEM) {
    const char *message = wb_last_error();
    if (strncmp(message, "wb_", 3) != 0 || strstr(message, ": out of memory") == nullptr) {
      fail_msg("step %zu (%s), allocation %llu failed: WB_E_NOMEM, but the message \"%s\" does not say which "
               "call ran out of memory", k, kSteps[k].call, (unsigned long long)fail_at, message);
    }
    uint64_t retry_made = 0;
    expect_ok(run_step(s, k, 0, &retry_made), k, "retried after WB_E_NOMEM");
  } else if (rc != WB_OK) {
    fail_msg("step %zu (%s), allocation %llu failed: %d (%s): %s, expected WB_OK or WB_E_NOMEM", k, kSteps[k].call,
             (unsigned long long)fail_at, rc, wb_strerror(rc), wb_last_error());
  }
  run_rest(s, k + 1, "after a failed allocation in an earlier step");
  return made >= fail_at;
}

// The library's allocations are this executable's: a session without failures counts each call's, and
// attaching alone allocates (its requests are FlatBufferBuilders and std::vectors inside libweightbus.so).
void allocations_of_the_library_are_counted(void **) {
  Session s;
  broker.next_session(&s);
  uint64_t attach = 0;
  for (size_t k = 0; k < kStepCount; ++k) {
    uint64_t made = 0;
    expect_ok(run_step(s, k, 0, &made), k, "without failures");
    printf("  %-26s %llu allocations\n", kSteps[k].call, (unsigned long long)made);
    if (attach == 0 && strcmp(kSteps[k].call, "wb_attach") == 0) attach = made;
  }
  assert_true(attach > 0);
}

// Every allocation of every step fails once, in a session of its own.
void every_allocation_of_every_call_may_fail(void **) {
  unsigned long long sessions = 0;
  for (size_t k = 0; k < kStepCount; ++k) {
    for (uint64_t n = 1; session_failing(k, n); ++n) ++sessions;
  }
  printf("  %llu sessions, each with one failed allocation\n", sessions);
  assert_true(sessions > kStepCount);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(allocations_of_the_library_are_counted, stop_broker),
      cmocka_unit_test_teardown(every_allocation_of_every_call_may_fail, stop_broker),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
