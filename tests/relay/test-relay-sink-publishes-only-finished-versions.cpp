// A sink publishes a version only after the source says its side of the transfer finished (kSent): with NCCL a
// receive can complete on stale bytes when the source aborted mid-transfer (seen on two H200s with a stopped
// sink), so the transport's word alone must never publish. A scripted source speaks the protocol to a real
// sink over TCP: version 1 with kSent is published; version 2, whose bytes all arrive but whose source
// vanishes before kSent, is not, and version 3 with a kSent naming another version is not either.
//
//   test-relay-sink-publishes-only-finished-versions CLI WEIGHTBUSD
#include <glob.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "messages.hpp"
#include "topic_layout.hpp"
#include "transport.hpp"

using namespace wbrelay;

namespace {

constexpr uint64_t kBucket = 256;
constexpr uint64_t kTensorBytes = 1000;  // four buckets, the last one partial

pid_t start(std::vector<std::string> args) {
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char *> argv;
    for (std::string &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Removes the shared-memory objects of broker `name` still in /dev/shm (its segment, its host allocations
// .a<N>) and returns them, each named on stderr.
std::vector<std::string> remove_shm_left(const std::string &name) {
  const std::string segment = "/dev/shm/weightbus-" + std::to_string(getuid()) + "-" + name;
  std::vector<std::string> left;
  glob_t found{};
  if (glob((segment + "{,.a*}").c_str(), GLOB_BRACE, nullptr, &found) == 0) {
    left.assign(found.gl_pathv, found.gl_pathv + found.gl_pathc);
  }
  globfree(&found);
  for (const std::string &path : left) {
    std::fprintf(stderr, "broker %s left %s behind\n", name.c_str(), path.c_str());
    unlink(path.c_str());
  }
  return left;
}

wb_topic *sink_topic(wb_client *client) {
  wb_topic *topic = nullptr;
  for (int i = 0; i < 500 && wb_topic_open(client, "policy", &topic) != WB_OK; ++i) usleep(10000);
  return topic;
}

uint64_t latest(wb_topic *topic) {
  uint64_t v = 0;
  CHECK(wb_topic_latest(topic, &v) == WB_OK);
  return v;
}

// The source's side of one session: handshake and group, as tools/relay/source.cpp does.
Socket admit(Socket &listener) {
  Socket s = accept_until(listener, Deadline::after(10000));
  Deadline d = Deadline::after(5000);
  expect_message(s.fd(), MessageType::kHello, d);
  TopicLayout layout;
  layout.replicas = 2;
  TensorLayout t;
  t.name = "w";
  t.dtype = WB_DTYPE_U8;
  t.ndim = 1;
  t.shape[0] = int64_t(kTensorBytes);
  t.strides[0] = 1;
  t.nbytes = kTensorBytes;
  layout.tensors = {t};
  Writer welcome;
  welcome.u64(kBucket);
  encode_layout(layout, welcome);
  send_message(s.fd(), MessageType::kWelcome, welcome, d);
  expect_message(s.fd(), MessageType::kReady, d);
  Writer group;
  group.u64(1).u32(2).u32(1).bytes("", 0);
  send_message(s.fd(), MessageType::kGroup, group, d);
  expect_message(s.fd(), MessageType::kJoined, d);
  return s;
}

// Sends version v's header and every byte of its one tensor (all bytes = v), then kSent for sent_version
// unless it is 0.
void send_version(int fd, uint64_t v, uint64_t sent_version) {
  Deadline d = Deadline::after(5000);
  Writer header;
  header.u64(v).u64(1).u32(1).u64(kBucket).bytes(&v, sizeof(v)).u32(1).str("w");
  send_message(fd, MessageType::kVersion, header, d);
  std::vector<char> bytes(kTensorBytes, char(v));
  std::vector<Bucket> buckets = plan_buckets({kTensorBytes}, kBucket);
  BucketIo io{&buckets, {bytes.data()}};
  std::unique_ptr<Transport> tcp = make_tcp_transport(kBucket);
  GroupSpec g;
  g.nranks = 2;
  g.peers = {fd};
  tcp->join(g, d);
  tcp->send(io, 0, d);
  if (sent_version != 0) send_message(fd, MessageType::kSent, Writer().u64(sent_version), d);
}

// The sink's topic stays at version 1 for a while.
void stays_at_one(wb_topic *topic) {
  for (int i = 0; i < 50; ++i, usleep(10000)) CHECK(latest(topic) == 1);
}

void run(char **argv) {
  char dir[] = "/tmp/wbrelay-XXXXXX";
  if (mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
  std::string socket = std::string(dir) + "/b.sock", name = "relaysent-" + std::to_string(getpid());
  pid_t broker = start({argv[2], "--foreground", "--socket", socket, "--name", name, "--log-level", "warn"});
  Socket listener = listen_on(Endpoint{"127.0.0.1", 0});
  std::string rendezvous = "127.0.0.1:" + std::to_string(local_port(listener));
  wb_attach_options ao = WB_ATTACH_OPTIONS_INIT;
  ao.socket_path = socket.c_str();
  wb_client *client = nullptr;
  for (int i = 0; i < 500 && wb_attach(&ao, &client) != WB_OK; ++i) usleep(10000);
  CHECK(client != nullptr);
  pid_t sink = start({argv[1], "--socket", socket, "relay", "--topic", "policy", "--role", "sink", "--rank", "1",
                      "--world", "2", "--rendezvous", rendezvous, "--transport", "tcp", "--timeout", "3000"});

  Socket s = admit(listener);
  send_version(s.fd(), 1, 1);
  Message ack = expect_message(s.fd(), MessageType::kAck, Deadline::after(5000));
  CHECK(Reader(ack.payload).u64() == 1);
  wb_topic *topic = sink_topic(client);
  CHECK(topic != nullptr && latest(topic) == 1);

  send_version(s.fd(), 2, 0);  // every byte, then the source vanishes
  s = Socket();
  stays_at_one(topic);

  s = admit(listener);  // the sink reconnects at once
  send_version(s.fd(), 3, 4);
  stays_at_one(topic);
  s = Socket();

  wb_snapshot *snap = nullptr;
  CHECK(wb_snapshot_acquire(topic, 1, 1000, &snap) == WB_OK);
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  CHECK(wb_snapshot_tensor(snap, "w", &info) == WB_OK && static_cast<const char *>(info.data)[999] == 1);
  wb_snapshot_release(snap);
  wb_detach(client);
  kill(sink, SIGKILL);
  kill(broker, SIGTERM);
  waitpid(sink, nullptr, 0);
  int status = 0;
  waitpid(broker, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(remove_shm_left(name).empty());  // a broker stopped cleanly removes its segment and allocations
  rmdir(dir);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CLI WEIGHTBUSD\n", argv[0]);
    return 2;
  }
  try {
    run(argv);
  } catch (const std::exception &e) {  // the sink answered what a scripted source did not expect
    std::fprintf(stderr, "%s\n", e.what());
    ++g_failures;
  }
  std::printf("%s\n", g_failures == 0 ? "the sink publishes only finished versions: passed" : "FAILED");
  return g_failures;
}
