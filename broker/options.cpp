#include "options.hpp"

#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "byte_size.hpp"
#include "weightbus/weightbus.h"

namespace wb::broker {

namespace {

const char kUsage[] =
    "usage: weightbusd [options]\n"
    "\n"
    "The weightbus broker: owns the shared-memory registry of topics, tensors and versions for one node (or\n"
    "one user/job) and answers clients on a Unix socket.\n"
    "\n"
    "options:\n"
    "  --name NAME              broker name (default: default); names the segment /weightbus-<uid>-<NAME>\n"
    "  --socket PATH            control socket (default: $WEIGHTBUS_SOCKET, else\n"
    "                           $XDG_RUNTIME_DIR/weightbus/NAME.sock, else /tmp/weightbus-<uid>/NAME.sock).\n"
    "                           Its directory is made 0700 if missing; weightbusd refuses to start when it is\n"
    "                           not a real directory of its uid that group and others cannot write (so not\n"
    "                           /tmp itself), or when /dev/shm holds objects of its name it does not own.\n"
    "  --foreground             stay in the foreground and log to stderr (default: daemonize and log to\n"
    "                           the socket's path + .log, e.g. /tmp/weightbus-<uid>/NAME.sock.log)\n"
    "  --log-level LEVEL        error, warn, info (default) or debug\n"
    "  --on-stop keep|remove    what SIGTERM and SIGINT do with the topics (default: remove; see stopping)\n"
    "  --metrics unix:PATH|tcp:[ADDR:]PORT  serve Prometheus metrics there (default: off; see metrics)\n"
    "  --max-topics N           topics in the registry (default 256)\n"
    "  --max-tensors N          tensors and views (default 65536)\n"
    "  --max-allocations N      shared allocations (default 4096)\n"
    "  --max-clients N          attached clients at once (default 128)\n"
    "  --leases-per-client N    snapshots one client may hold at once (default 64)\n"
    "  --ring-slots N           version records kept per topic (default 16, at least 2)\n"
    "  --max-ranks N            publishing ranks of sharded topics, all together (default 1024)\n"
    "  --help, --version\n"
    "\n"
    "per-client limits (one connection; a request over one is refused with WB_E_NOSPC naming the flag):\n"
    "  --max-topics-per-client N       topics one client may create (default: half of --max-topics)\n"
    "  --max-tensors-per-client N      tensors and views one client may add (default: half of --max-tensors)\n"
    "  --max-allocations-per-client N  allocations one client may make (default: half of --max-allocations)\n"
    "  --max-bytes-per-client N[K|M|G|T]  host shared memory one client may allocate, in bytes or with a\n"
    "                                  suffix in powers of 1024: 8G (default: half of the machine's memory)\n"
    "  --max-subscriptions-per-client N  notify fds (wb_topic_notify_fd) one client may hold at once\n"
    "                                  (default: 4 x --max-topics)\n"
    "  --max-chunks-per-client N       CUDA VMM chunks one client may export (default 65536)\n"
    "\n"
    "descriptors: the broker raises its soft RLIMIT_NOFILE (`ulimit -n`) to the hard limit and keeps 16 of\n"
    "them free, so that it can always accept, answer and close, and room for --max-clients connections; a\n"
    "connection or request that would need one of those is refused with WB_E_NOSPC naming RLIMIT_NOFILE.\n"
    "\n"
    "metrics (each one is listed in docs/operations.md):\n"
    "  --metrics unix:PATH        a Unix socket of mode 0600 (a path left by a dead broker is taken over)\n"
    "  --metrics tcp:PORT         127.0.0.1:PORT: loopback only, though any local user may connect\n"
    "  --metrics tcp:ADDR:PORT    that address (numeric: 0.0.0.0, [::1], ...): only where whoever reaches it\n"
    "                             may read every topic's name and figures\n"
    "  The broker answers GET /metrics in Prometheus' text format over HTTP/1.0, one answer per connection,\n"
    "  with the figures of `weightbus stats --prometheus`; a connection is closed within 5 s whatever it does.\n"
    "  A path or port it cannot listen on stops it at start.\n"
    "\n"
    "stopping:\n"
    "  SIGTERM or SIGINT (`weightbus stop [--name NAME | --socket PATH]` sends SIGTERM and waits) stops the\n"
    "  broker as --on-stop says. remove: it drops its clients and removes its socket and its segment, with every\n"
    "  topic in it. keep (what the systemd units set): it leaves the segment in /dev/shm, as SIGKILL or a crash\n"
    "  does: a broker started again with the same name adopts it, with every topic and published version, and\n"
    "  the clients resume with it. SIGUSR1 (`weightbus stop --keep`) always keeps; SIGUSR2 (`weightbus stop\n"
    "  --remove`) always removes.\n"
    "\n"
    "systemd:\n"
    "  With $LISTEN_FDS (socket activation, weightbusd.socket) the broker serves the socket systemd passes\n"
    "  instead of binding one (the socket's path is systemd's), and leaves it in place when it stops. With\n"
    "  $NOTIFY_SOCKET (Type=notify) it says READY=1 once clients can connect. Run it there with --foreground.\n"
    "  When its stderr is the journal's stream ($JOURNAL_STREAM names it), it logs into the journal itself, each\n"
    "  line with its level as priority (error: err, warn: warning, info, debug).\n"
    "\n"
    "examples:\n"
    "  weightbusd --foreground --name train0 --max-tensors 200000\n"
    "  weightbusd --name job7 && weightbus --name job7 ls && weightbus --name job7 stop\n";

bool parse_count(const char *text, uint32_t min, uint32_t max, uint32_t *out) {
  errno = 0;
  char *end;
  unsigned long long value = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < min || value > max) return false;
  *out = uint32_t(value);
  return true;
}

struct CountFlag {
  const char *flag;
  uint32_t shm::Capacities::*field;
  uint32_t min;
  uint32_t max;
};

constexpr const shm::Capacities &kMax = shm::kCapacityLimits;
// Each subscription and CUDA chunk is a descriptor in the broker: the limits are below what a process may open
// (fs.nr_open, 1048576 by default), and the broker's descriptor budget refuses them earlier still.
constexpr uint32_t kMaxSubscriptionsPerClient = 1u << 20;
constexpr uint32_t kMaxChunksPerClient = 1u << 20;
// A client's notify subscriptions by default: one notify fd per topic per client handle, for four handles of
// every topic, far more than a reader uses, far fewer than one descriptor-hungry loop would open.
constexpr uint32_t kSubscriptionsPerTopic = 4;
// CUDA VMM chunks one client may register by default: 64 Ki chunks of at least 2 MiB (the VMM granularity)
// are 128 GiB or more, more than one GPU holds.
constexpr uint32_t kDefaultChunksPerClient = 65536;

const CountFlag kCountFlags[] = {
    {"--max-topics", &shm::Capacities::max_topics, 1, kMax.max_topics},
    {"--max-tensors", &shm::Capacities::max_tensors, 1, kMax.max_tensors},
    {"--max-allocations", &shm::Capacities::max_allocations, 1, kMax.max_allocations},
    {"--max-clients", &shm::Capacities::max_clients, 1, kMax.max_clients},
    {"--leases-per-client", &shm::Capacities::leases_per_client, 1, kMax.leases_per_client},
    {"--ring-slots", &shm::Capacities::ring_slots, 2, kMax.ring_slots},
    {"--max-ranks", &shm::Capacities::max_ranks, 1, kMax.max_ranks},
};

struct QuotaFlag {
  const char *flag;
  uint32_t Quota::*field;
  uint32_t max;
};

const QuotaFlag kQuotaFlags[] = {
    {"--max-topics-per-client", &Quota::topics, kMax.max_topics},
    {"--max-tensors-per-client", &Quota::tensors, kMax.max_tensors},
    {"--max-allocations-per-client", &Quota::allocations, kMax.max_allocations},
    {"--max-subscriptions-per-client", &Quota::subscriptions, kMaxSubscriptionsPerClient},
    {"--max-chunks-per-client", &Quota::chunks, kMaxChunksPerClient},
};

// Per-client limits of table entries left at 0 get half of what they limit, at least 1.
void default_quota(const shm::Capacities &caps, Quota *q) {
  if (q->topics == 0) q->topics = std::max(1u, caps.max_topics / 2);
  if (q->tensors == 0) q->tensors = std::max(1u, caps.max_tensors / 2);
  if (q->allocations == 0) q->allocations = std::max(1u, caps.max_allocations / 2);
  if (q->bytes == 0) q->bytes = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE)) / 2;
  if (q->subscriptions == 0) q->subscriptions = kSubscriptionsPerTopic * caps.max_topics;
  if (q->chunks == 0) q->chunks = kDefaultChunksPerClient;
}

int usage_error(const std::string &message) {
  fprintf(stderr, "weightbusd: %s; see weightbusd --help\n", message.c_str());
  return 2;
}

// getopt_long's value for each option: a character for the named ones, an offset into a table for the others.
enum OptionCode : int {
  kHelp = 'h',
  kVersion = 256,
  kForeground,
  kName,
  kSocket,
  kOnStop,
  kLogLevel,
  kMetrics,
  kMaxBytesPerClient,
  kCountBase = 512,              // + index into kCountFlags
  kQuotaBase = kCountBase + 64,  // + index into kQuotaFlags
};

std::vector<option> long_options() {
  std::vector<option> table = {
      {"help", no_argument, nullptr, kHelp},
      {"version", no_argument, nullptr, kVersion},
      {"foreground", no_argument, nullptr, kForeground},
      {"name", required_argument, nullptr, kName},
      {"socket", required_argument, nullptr, kSocket},
      {"on-stop", required_argument, nullptr, kOnStop},
      {"log-level", required_argument, nullptr, kLogLevel},
      {"metrics", required_argument, nullptr, kMetrics},
      {"max-bytes-per-client", required_argument, nullptr, kMaxBytesPerClient},
  };
  for (size_t k = 0; k < std::size(kCountFlags); ++k)
    table.push_back({kCountFlags[k].flag + 2, required_argument, nullptr, int(kCountBase + k)});
  for (size_t k = 0; k < std::size(kQuotaFlags); ++k)
    table.push_back({kQuotaFlags[k].flag + 2, required_argument, nullptr, int(kQuotaBase + k)});
  table.push_back({nullptr, 0, nullptr, 0});
  return table;
}

// The word getopt_long just refused: the option as written, without a value glued to it with '='.
std::string refused_word(char **argv) {
  const std::string word = argv[optind - 1];
  return word.substr(0, word.find('='));
}

// What is wrong with the option getopt_long refused: unknown (optopt 0 for a long one, the letter for a short
// one), or a flag given a value (--foreground=1: optopt is its code).
std::string refused(char **argv) {
  const std::string word = refused_word(argv);
  if (!word.starts_with("--")) return std::string("unknown option -") + char(optopt);
  return optopt != 0 ? word + " takes no value" : "unknown option " + word;
}

// One option's value into out. Returns 0, or the exit status of a usage error (printed).
int apply(int code, const char *value, Options *out) {
  std::string why;
  switch (code) {
    case kName:
      if (value[0] == '\0' || strlen(value) > 64 || strchr(value, '/') != nullptr)
        return usage_error(std::string("--name '") + value + "' must be 1..64 bytes without '/'");
      out->name = value;
      return 0;
    case kSocket:
      out->socket_path = value;
      return 0;
    case kOnStop:
      if (strcmp(value, "keep") != 0 && strcmp(value, "remove") != 0)
        return usage_error(std::string("--on-stop '") + value + "' is not keep or remove");
      out->on_stop = strcmp(value, "keep") == 0 ? OnStop::kKeep : OnStop::kRemove;
      return 0;
    case kLogLevel:
      if (!parse_log_level(value, &out->log_level))
        return usage_error(std::string("--log-level '") + value + "' is not error, warn, info or debug");
      return 0;
    case kMetrics:
      if (!parse_metrics_endpoint(value, &out->metrics))
        return usage_error(std::string("--metrics '") + value +
                           "' is not unix:PATH, tcp:PORT or tcp:ADDR:PORT (ADDR a numeric IPv4 address or a "
                           "bracketed IPv6 one)");
      return 0;
    case kMaxBytesPerClient:
      if (!parse_byte_size(value, 1, UINT64_MAX, &out->per_client.bytes, &why))
        return usage_error("--max-bytes-per-client " + why);
      return 0;
    default:
      break;
  }
  if (code >= kQuotaBase) {
    const QuotaFlag &quota = kQuotaFlags[code - kQuotaBase];
    if (!parse_count(value, 1, quota.max, &(out->per_client.*quota.field)))
      return usage_error(std::string(quota.flag) + " " + value + " is not a whole number in 1.." +
                         std::to_string(quota.max));
    return 0;
  }
  const CountFlag &flag = kCountFlags[code - kCountBase];
  if (!parse_count(value, flag.min, flag.max, &(out->caps.*flag.field)))
    return usage_error(std::string(flag.flag) + " " + value + " is not a whole number in " +
                       std::to_string(flag.min) + ".." + std::to_string(flag.max));
  return 0;
}

}  // namespace

int parse_options(int argc, char **argv, Options *out, bool *exit_now) {
  *exit_now = true;
  const std::vector<option> table = long_options();
  optind = 0;  // a full restart of getopt's scan: parse_options may run more than once in a process
  opterr = 0;  // its messages are ours
  for (int code; (code = getopt_long(argc, argv, ":h", table.data(), nullptr)) != -1;) {
    if (code == '?') return usage_error(refused(argv));
    if (code == ':') return usage_error(refused_word(argv) + " needs a value");
    if (code == kHelp) return fputs(kUsage, stdout), 0;
    if (code == kVersion) return printf("weightbusd %s\n", WB_VERSION_STRING), 0;
    if (code == kForeground) {
      out->foreground = true;
      continue;
    }
    if (const int status = apply(code, optarg, out); status != 0) return status;
  }
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  *exit_now = false;
  default_quota(out->caps, &out->per_client);
  return 0;
}

}  // namespace wb::broker
