// weightbus relay: the command line of tools/relay (docs/relay.md). Parses and checks the options, installs
// the stop signals and maps the relay's errors to exit statuses.
#include <csignal>

#include "commands.hpp"
#include "failures.hpp"
#include "relay.hpp"

namespace wbcli {
namespace {

const char *kUsage =
    "weightbus relay --topic T --role source|sink --rendezvous HOST:PORT --rank R --world N [--bucket BYTES] "
    "[--timeout MS] [--transport nccl|tcp]";

const char *kHelp = R"HELP(Fans the versions of a topic out to the brokers of other nodes. One source (rank 0, on the trainer's
node) reads each new version of TOPIC from its local broker, holding a lease while it sends, and sends the
tensors that changed since the sinks' version; each sink (ranks 1..N-1, one per other node) publishes the
same version number with the same metadata into its own local broker, creating the topic on first contact
from the source's layout (on GPU 0 of the sink, see CUDA_VISIBLE_DEVICES, when the source's tensors are
CUDA tensors). The source listens at the rendezvous; sinks connect to it, and may join late or come back:
they first receive the latest version in full. The NCCL communicator's unique id travels over that
connection. Runs until SIGINT or SIGTERM. The local broker is chosen by the global --socket / --name.

options:
  --topic T           the topic to relay
  --role source|sink  rank 0 is the source, the others are sinks
  --rendezvous H:P    where the source listens (it binds H:P) and the sinks connect
  --rank R            0 for the source, 1..N-1 for the sinks (each once)
  --world N           the number of relay processes: the source and N-1 sinks (2..1024)
  --bucket BYTES      source: the size of each of the two staging buffers, with an optional K, M, G or T
                      suffix (powers of 1024; default 512M, at most 1T); the sinks take the source's
  --timeout MS        how long to wait for the rendezvous, for the sinks at start (the source goes on
                      without the missing ones), and for a silent peer before it is dropped (default 30000)
  --transport T       nccl (default: GPU buffers, NCCL broadcast; needs libcuda and libnccl.so.2) or tcp
                      (host buffers over the rendezvous connections; host tensors only)

exit status: 0 after SIGINT/SIGTERM, 1 a local failure (broker, topic, CUDA, NCCL), 2 a bad option,
3 no source at the rendezvous within --timeout, or refused by it.

examples:
  node0$ weightbus relay --topic policy --role source --rendezvous node0:29600 --rank 0 --world 3
  node1$ weightbus relay --topic policy --role sink --rendezvous node0:29600 --rank 1 --world 3
  node2$ weightbus relay --topic policy --role sink --rendezvous node0:29600 --rank 2 --world 3
)HELP";

std::string required(Args &args, const char *name) {
  std::optional<std::string> v = args.value(name);
  if (!v || v->empty()) throw UsageError(std::string("missing ") + name);
  return *v;
}

wbrelay::Options parse(const GlobalOptions &g, Args &args) {
  wbrelay::Options o;
  o.socket = g.socket;
  o.broker_name = g.name;
  o.topic = required(args, "--topic");
  if (o.topic.size() > WB_NAME_MAX) throw UsageError("--topic is longer than " + std::to_string(WB_NAME_MAX) + " bytes");
  const std::string role = required(args, "--role");
  if (role != "source" && role != "sink") throw UsageError("--role must be source or sink, not '" + role + "'");
  o.source = role == "source";
  try {
    o.rendezvous = wbrelay::parse_endpoint(required(args, "--rendezvous"));
  } catch (const wbrelay::RelayError &e) {
    throw UsageError(e.what());
  }
  std::optional<int64_t> world = args.integer("--world", 2, 1024);
  std::optional<int64_t> rank = args.integer("--rank", 0, 1023);
  if (!world) throw UsageError("missing --world");
  if (!rank) throw UsageError("missing --rank");
  o.world = uint32_t(*world);
  o.rank = uint32_t(*rank);
  if (o.source && o.rank != 0) throw UsageError("the source is rank 0, not " + std::to_string(o.rank));
  if (!o.source && (o.rank == 0 || o.rank >= o.world)) {
    throw UsageError("a sink's --rank must be between 1 and " + std::to_string(o.world - 1) + " (--world " + std::to_string(o.world) + ")");
  }
  std::optional<uint64_t> bucket = args.bytes("--bucket", 1, 1ull << 40);
  if (bucket && !o.source) throw UsageError("--bucket is the source's option: the sinks take the source's");
  if (bucket) o.bucket = *bucket;
  o.timeout_ms = args.integer("--timeout", 1, 86400000).value_or(o.timeout_ms);
  o.transport = args.value("--transport").value_or(o.transport);
  if (o.transport != "nccl" && o.transport != "tcp") throw UsageError("--transport must be nccl or tcp, not '" + o.transport + "'");
  args.positionals(0, 0);
  return o;
}

void on_stop(int) { wbrelay::g_stop = true; }

int run(const GlobalOptions &g, Args &args) {
  const wbrelay::Options o = parse(g, args);
  struct sigaction sa {};
  sa.sa_handler = on_stop;  // no SA_RESTART: waits return early and see the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return o.source ? wbrelay::run_source(o) : wbrelay::run_sink(o);
  } catch (const wbrelay::RelayError &e) {
    err_line(std::string("weightbus relay: ") + e.what());
    return e.exit_code;
  }
}

}  // namespace

const Command kRelayCommand = {"relay",
                               "fan a topic's versions out to other nodes' brokers (NCCL)",
                               kUsage,
                               kHelp,
                               "topic: role: rendezvous: world: rank: bucket: timeout: transport:",
                               run};

}  // namespace wbcli
