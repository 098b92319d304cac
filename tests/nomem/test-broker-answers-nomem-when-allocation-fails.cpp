// The broker survives running out of memory in a message handler. A session of two clients reaching every
// handler (attach, topics, host tensors and views, allocations, notify pipes, CUDA registration, chunks,
// imports, releases and revokes, a resume after adoption) runs in-process through the real dispatcher, as
// tests/fuzz/fuzz-broker-messages does, once per allocation that handling each message makes, that allocation
// failing (fail_nth_allocation.hpp). Each time the message gets exactly one reply: WB_OK, or WB_E_NOMEM with a
// message, and then the segment is byte for byte as before and the same message succeeds; the registry's
// tables are consistent; and the rest of the session runs as usual.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dispatcher.hpp"
#include "error.hpp"
#include "fail_nth_allocation.hpp"
#include "log.hpp"
#include "protocol_generated.h"

extern "C" {
#include <setjmp.h>  // cmocka's prerequisites, then cmocka last: its macros clash with C++ library headers
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
}

namespace broker = wb::broker;
namespace proto = wb::proto;
namespace shm = wb::shm;

namespace {

constexpr int kPeers = 2;

// One message of the session: from which peer, its bytes, and the descriptor it carries (if any).
struct Step {
  const char *what;
  int peer;
  std::vector<uint8_t> bytes;
  bool carries_fd = false;
  bool answered = true;  // Published is not
};

template <typename Body>
Step step(const char *what, int peer, flatbuffers::FlatBufferBuilder &b, flatbuffers::Offset<Body> body,
          bool carries_fd = false) {
  b.Finish(proto::CreateMessage(b, 1, proto::BodyTraits<Body>::enum_value, body.Union()));
  Step s{what, peer, {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()}, carries_fd};
  s.answered = proto::BodyTraits<Body>::enum_value != proto::Body::Published;
  b.Clear();
  return s;
}

Step attach(int peer, uint32_t pid) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint32_t> fields = shm::fingerprint_words();
  return step("Attach", peer, b, proto::CreateAttachDirect(b, shm::kLayoutVersion, &fields, pid, "nomem"));
}

Step resume(uint32_t pid, uint32_t slot, uint32_t generation) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint32_t> fields = shm::fingerprint_words();
  std::vector<uint32_t> imported{0};
  return step("Attach (resume)", 0, b,
              proto::CreateAttachDirect(b, shm::kLayoutVersion, &fields, pid, "nomem", true, slot, generation,
                                        &imported));
}

Step create_topic(int peer, const char *name, uint32_t replicas) {
  flatbuffers::FlatBufferBuilder b;
  return step("CreateTopic", peer, b, proto::CreateCreateTopicDirect(b, name, replicas));
}

// The session: client 0 publishes topic 0 ("policy", R = 2) with host tensors, a view and a CUDA allocation
// (allocation 1, VMM, one chunk) holding a registered tensor; client 1 reads it.
std::vector<Step> session() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<Step> steps;
  steps.push_back(attach(0, 1001));
  steps.push_back(attach(1, 1002));
  steps.push_back(create_topic(0, "policy", 2));
  std::vector<int64_t> shape{4, 4};
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs{
      proto::CreateTensorSpecDirect(b, "w", WB_DTYPE_F32, &shape),
      proto::CreateTensorSpecDirect(b, "b", WB_DTYPE_BF16, &shape)};
  steps.push_back(step("AllocTensors", 0, b, proto::CreateAllocTensorsDirect(b, 0, &specs)));
  std::vector<int64_t> view_shape{2, 4}, strides{4, 1};
  steps.push_back(step("CreateView", 0, b,
                       proto::CreateCreateViewDirect(b, 0, "w.top", "w", WB_DTYPE_F32, 0, &view_shape, &strides)));
  steps.push_back(step("OpenTopic", 1, b, proto::CreateOpenTopicDirect(b, "policy")));
  steps.push_back(step("GetAllocation", 1, b, proto::CreateGetAllocation(b, 0)));
  steps.push_back(step("Subscribe", 1, b, proto::CreateSubscribe(b, 0), true));
  steps.push_back(step("Published", 0, b, proto::CreatePublished(b, 0, 1)));
  std::vector<uint8_t> uuid(16, 7);
  steps.push_back(step("RegisterCudaAllocation", 0, b,
                       proto::CreateRegisterCudaAllocationDirect(b, 0, uint32_t(shm::AllocationKind::kCudaVmm), 8192,
                                                                 &uuid, nullptr, 0x7f0000000000, 1)));
  std::vector<uint64_t> sizes{8192};
  steps.push_back(step("AddAllocationChunks", 0, b, proto::CreateAddAllocationChunksDirect(b, 1, 0, &sizes), true));
  std::vector<int64_t> g_shape{16};
  std::vector<uint32_t> allocations{1, 1};
  std::vector<uint64_t> offsets{0, 4096};
  std::vector<flatbuffers::Offset<proto::RegisteredTensor>> tensors{
      proto::CreateRegisteredTensorDirect(b, "g", WB_DTYPE_F32, &g_shape, &allocations, &offsets)};
  steps.push_back(step("RegisterTensors", 0, b, proto::CreateRegisterTensorsDirect(b, 0, &tensors)));
  steps.push_back(step("ImportAllocation", 1, b, proto::CreateImportAllocation(b, 1, 0)));
  steps.push_back(step("ReleaseAllocation", 1, b, proto::CreateReleaseAllocation(b, 1)));
  steps.push_back(step("RevokeAllocation", 0, b, proto::CreateRevokeAllocation(b, 1)));
  steps.push_back(step("CloseTopic", 0, b, proto::CreateCloseTopic(b, 0)));
  steps.push_back(create_topic(1, "policy", 2));  // a takeover
  steps.push_back(step("CloseTopic", 1, b, proto::CreateCloseTopic(b, 0)));
  steps.push_back(step("RemoveTopic", 0, b, proto::CreateRemoveTopicDirect(b, "policy")));
  return steps;
}

broker::Options options(const char *name) {
  broker::Options o;
  o.name = name;
  o.caps = shm::Capacities{4, 32, 8, 4, 4, 4, 8};
  o.per_client = broker::Quota{4, 16, 8, 1 << 20, 4, 64};
  return o;
}

// A dispatcher on a private segment with two connected clients: the dispatcher's end of each socket pair, and
// the end where the replies arrive.
struct Broker {
  broker::Options opts;
  broker::Dispatcher dispatcher{opts};
  broker::Client clients[kPeers];
  int other_end[kPeers] = {-1, -1};
  std::vector<int> kept;  // the read ends of the pipes whose write ends went to the broker

  explicit Broker(const char *name, bool *adopted = nullptr) : opts(options(name)) {
    bool was_adopted = false;
    assert_int_equal(dispatcher.open_registry(&was_adopted), WB_OK);
    if (adopted != nullptr) *adopted = was_adopted;
    for (int i = 0; i < kPeers; ++i) {
      int sv[2];
      assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
      clients[i].fd = sv[0];
      other_end[i] = sv[1];
      clients[i].uid = uint32_t(getuid());
    }
  }
  ~Broker() {
    for (int i = 0; i < kPeers; ++i) {
      dispatcher.client_gone(&clients[i], "end of the session");
      close(clients[i].fd);
      close(other_end[i]);
    }
    for (int fd : kept) close(fd);
  }
};

// What one message got: the reply's code and message, or no reply.
struct Answer {
  int replies = 0;
  int code = WB_OK;
  std::string message;
};

// Hands the step's message to the dispatcher with allocation fail_at failing (0: none); *made receives the
// allocations handling it made.
Answer handle(Broker &b, const Step &s, uint64_t fail_at, uint64_t *made) {
  broker::Client &client = b.clients[s.peer];
  wb::wire::Received msg;
  msg.data = s.bytes;
  if (s.carries_fd) {
    int ends[2];
    assert_int_equal(pipe2(ends, O_CLOEXEC), 0);
    b.kept.push_back(ends[0]);
    msg.fds.push_back(ends[1]);
  }
  wb::clear_error();
  bool escaped = false;
  wb::test::arm_allocation_failure(fail_at);
  try {
    b.dispatcher.handle(&client, msg);
  } catch (...) {
    escaped = true;
  }
  *made = wb::test::disarm_allocation_failure();
  if (escaped) {
    fail_msg("%s: an exception left the dispatcher when allocation %llu failed", s.what, (unsigned long long)fail_at);
  }
  wb::wire::close_all(msg.fds);
  Answer answer;
  for (;;) {
    wb::wire::Received got;
    if (wb::wire::receive(b.other_end[s.peer], 0, &got) != WB_OK) break;
    wb::wire::close_all(got.fds);
    flatbuffers::Verifier verifier(got.data.data(), got.data.size());
    assert_true(verifier.VerifyBuffer<proto::Message>());
    const proto::Reply *reply = proto::GetMessage(got.data.data())->body_as_Reply();
    assert_non_null(reply);
    ++answer.replies;
    answer.code = reply->code();
    answer.message = reply->message() != nullptr ? reply->message()->str() : "";
  }
  assert_null(client.hang_up);
  return answer;
}

void expect_ok(Broker &b, const Step &s, const char *when) {
  uint64_t made = 0;
  Answer a = handle(b, s, 0, &made);
  if (a.replies != (s.answered ? 1 : 0) || a.code != WB_OK) {
    fail_msg("%s %s: %d replies, code %d: %s", s.what, when, a.replies, a.code, a.message.c_str());
  }
}

// The registry's tables agree with each other: every live topic is found by its name; its tensor list is
// within the table, ends where the topic says, holds distinct names, and every tensor belongs to one topic
// (a removed topic's tensors stay in the table, never reused); every publisher is a live client.
void check_consistent(const broker::Registry &r) {
  const shm::Segment &seg = r.seg();
  const shm::Header &h = seg.header();
  const shm::Capacities &caps = seg.caps();
  uint32_t tensors = h.tensor_count.load();
  assert_true(h.topic_count.load() <= caps.max_topics && tensors <= caps.max_tensors &&
              h.allocation_count.load() <= caps.max_allocations);
  std::vector<bool> owned(tensors, false);
  for (uint32_t t = 0; t < h.topic_count.load(); ++t) {
    const shm::Topic &topic = seg.topic(t);
    if (topic.state.load() != uint32_t(shm::TopicState::kLive)) continue;
    uint32_t found = UINT32_MAX;
    assert_int_equal(r.open_topic(topic.name, &found), WB_OK);
    assert_int_equal(found, t);
    std::set<std::string> names;
    uint32_t i = topic.first_tensor, last = shm::kNone;
    for (uint32_t n = 0; n < topic.tensor_count.load(); ++n, i = seg.tensor(i).next.load()) {
      assert_true(i < tensors && !owned[i]);
      owned[i] = true;
      assert_int_equal(seg.tensor(i).topic, t);
      assert_true(names.insert(seg.tensor(i).name).second);
      assert_true(seg.tensor(i).allocation < h.allocation_count.load());
      last = i;
    }
    assert_int_equal(last, topic.tensor_count.load() == 0 ? shm::kNone : topic.last_tensor);
    uint32_t publisher = topic.publisher.load();
    if (publisher != 0) assert_int_equal(seg.client(publisher - 1).state.load(), uint32_t(shm::ClientState::kLive));
  }
  for (uint32_t i = 0; i < tensors; ++i) {
    const uint32_t topic = seg.tensor(i).topic;
    assert_true(owned[i] || (topic < h.topic_count.load() &&
                             seg.topic(topic).state.load() == uint32_t(shm::TopicState::kRemoved)));
  }
}

std::vector<uint8_t> segment_bytes(const broker::Registry &r) {
  const uint8_t *base = reinterpret_cast<const uint8_t *>(&r.seg().header());
  return {base, base + r.seg().header().segment_size};
}

// Handles steps[k] with its allocation fail_at failing, after the steps before it, then the rest. Returns
// whether the failure happened (handling it made that many allocations).
bool session_failing(const std::vector<Step> &steps, size_t k, uint64_t fail_at) {
  char name[64];
  snprintf(name, sizeof(name), "nomem-%d-%zu-%llu", int(getpid()), k, (unsigned long long)fail_at);
  Broker b(name);
  for (size_t i = 0; i < k; ++i) expect_ok(b, steps[i], "before the failure");
  std::vector<uint8_t> before = segment_bytes(b.dispatcher.registry());
  uint64_t made = 0;
  Answer a = handle(b, steps[k], fail_at, &made);
  if (a.replies != (steps[k].answered ? 1 : 0)) {
    fail_msg("%s, allocation %llu failed: %d replies", steps[k].what, (unsigned long long)fail_at, a.replies);
  }
  check_consistent(b.dispatcher.registry());
  if (a.code == WB_E_NOMEM) {
    if (a.message.find("out of memory") == std::string::npos) {
      fail_msg("%s: WB_E_NOMEM without saying so: \"%s\"", steps[k].what, a.message.c_str());
    }
    if (segment_bytes(b.dispatcher.registry()) != before) {
      fail_msg("%s, allocation %llu failed: WB_E_NOMEM, but the segment changed", steps[k].what,
               (unsigned long long)fail_at);
    }
    expect_ok(b, steps[k], "sent again after WB_E_NOMEM");
  } else if (a.code != WB_OK) {
    fail_msg("%s, allocation %llu failed: code %d (%s), expected WB_OK or WB_E_NOMEM", steps[k].what,
             (unsigned long long)fail_at, a.code, a.message.c_str());
  }
  for (size_t i = k + 1; i < steps.size(); ++i) expect_ok(b, steps[i], "after a failed allocation");
  check_consistent(b.dispatcher.registry());
  return made >= fail_at;
}

void every_handler_survives_allocation_failure(void **) {
  std::vector<Step> steps = session();
  unsigned long long sessions = 0;
  for (size_t k = 0; k < steps.size(); ++k) {
    uint64_t n = 1;
    while (session_failing(steps, k, n)) ++n;
    printf("  %-24s %llu allocation(s)\n", steps[k].what, (unsigned long long)(n - 1));
    sessions += n;
  }
  printf("  %llu sessions\n", sessions);
}

// The segment of a broker that died with client 0 attached, publishing "policy" and exporting allocation 0
// (legacy CUDA IPC): a child process makes it and exits without cleaning up, as a crash leaves it.
void leave_a_segment(const char *name, uint32_t pid) {
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    Broker b(name);
    b.clients[0].pid = pid;  // what the broker knows of a client's process (SO_PEERCRED in weightbusd)
    flatbuffers::FlatBufferBuilder fb;
    std::vector<uint8_t> uuid(16, 7), ipc_handle(64, 9);
    Step steps[] = {attach(0, pid), create_topic(0, "policy", 1),
                    step("RegisterCudaAllocation", 0, fb,
                         proto::CreateRegisterCudaAllocationDirect(fb, 0, uint32_t(shm::AllocationKind::kCudaIpc),
                                                                   4096, &uuid, &ipc_handle, 0x7f0000000000, 0))};
    uint64_t made = 0;
    for (const Step &s : steps) {
      if (handle(b, s, 0, &made).code != WB_OK) _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

void resume_survives_allocation_failure(void **) {
  constexpr uint32_t kPid = 4242;  // the orphan's process, as the dead broker knew it
  for (uint64_t n = 1;; ++n) {
    char name[64];
    snprintf(name, sizeof(name), "nomem-resume-%d-%llu", int(getpid()), (unsigned long long)n);
    leave_a_segment(name, kPid);
    bool adopted = false;
    Broker b(name, &adopted);
    assert_true(adopted);
    b.clients[0].pid = kPid;
    Step s = resume(kPid, 0, b.dispatcher.registry().seg().client(0).generation);
    std::vector<uint8_t> before = segment_bytes(b.dispatcher.registry());
    uint64_t made = 0;
    Answer a = handle(b, s, n, &made);
    assert_int_equal(a.replies, 1);
    check_consistent(b.dispatcher.registry());
    if (a.code == WB_E_NOMEM) {
      assert_true(segment_bytes(b.dispatcher.registry()) == before);
      expect_ok(b, s, "sent again after WB_E_NOMEM");
    } else {
      assert_int_equal(a.code, WB_OK);
    }
    flatbuffers::FlatBufferBuilder fb;
    expect_ok(b, step("CloseTopic", 0, fb, proto::CreateCloseTopic(fb, 0)), "by the resumed publisher");
    if (made < n) {
      printf("  Attach (resume)          %llu allocation(s)\n", (unsigned long long)(n - 1));
      return;
    }
  }
}

}  // namespace

int main(void) {
  broker::set_log_level(broker::LogLevel::kError);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_handler_survives_allocation_failure),
      cmocka_unit_test(resume_survives_allocation_failure),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
