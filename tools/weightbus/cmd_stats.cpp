// weightbus stats: the broker (its limits and counters), how far behind each reader is, how long leases are held,
// and the bytes of each topic; with --prometheus the same figures as the metrics weightbusd --metrics serves.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "clock.hpp"
#include "commands.hpp"
#include "output_json.hpp"
#include "metrics.hpp"
#include "ranks.hpp"

namespace wbcli {
namespace {

struct TopicStats {
  wb_topic_info info;
  std::string name;
  wb::metrics::LeaseTally tally;
  std::vector<wb_rank_info> ranks;  // a sharded topic's; empty for a plain one
};

struct Lease {
  wb_lease_info info;
  std::string topic;
  std::string client_name;
  uint64_t lag() const { return info.latest > info.version ? info.latest - info.version : 0; }
};

std::string duration(uint64_t ns) {
  char buf[32];
  if (ns < 1000000000) std::snprintf(buf, sizeof buf, "%.1f ms", double(ns) / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f s", double(ns) / 1e9);
  return buf;
}

// A rank's state needs the topic's rank table, which only a handle of the topic reads.
std::vector<wb_rank_info> load_ranks(weightbus::Client &client, const TopicStats &t) {
  if (t.info.ranks == 0) return {};
  const weightbus::Topic topic = open_topic(client, t.name);
  return topic_ranks(topic, t.info);
}

void print_ranks_text(const std::vector<TopicStats> &topics) {
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "RANK", "PID", "PUBLISHED", "WRITING", "LAG", "LAST PUBLISH"}};
  std::vector<std::string> waiting;
  for (const TopicStats &t : topics) {
    for (const wb_rank_info &r : t.ranks)
      rows.push_back({t.name, std::to_string(r.rank), r.pid ? std::to_string(r.pid) : "-", std::to_string(r.published),
                      r.writing ? std::to_string(r.writing) : "-", std::to_string(rank_lag(r, t.ranks, t.info.latest)),
                      r.published_ns ? format_time(r.published_ns) : "never"});
    const std::string w = waits_for(t.ranks, t.info.latest);
    if (!w.empty()) waiting.push_back("model '" + t.name + "': " + w);
  }
  if (rows.size() == 1) return;
  out_line("");
  print_table(rows);
  for (const std::string &w : waiting) out_line(w);
}

Json topic_json(const TopicStats &t) {
  return Json::object({{"name", t.name},
                       {"latest", t.info.latest},
                       {"replicas", t.info.replicas},
                       {"bytes", t.info.bytes},
                       {"version_bytes", t.info.replicas ? t.info.bytes / t.info.replicas : 0},
                       {"leases", t.tally.leases},
                       {"readers", t.tally.readers.size()},
                       {"max_lag", t.tally.max_lag},
                       {"longest_hold_ns", t.tally.longest_hold_ns},
                       {"published_ns", t.info.published_ns},
                       {"ranks", ranks_json(t.ranks, t.info.latest)},
                       {"waits_for", waits_for(t.ranks, t.info.latest)}});
}

Json lease_json(const Lease &l) {
  return Json::object({{"client_id", l.info.client_id},
                       {"pid", l.info.pid},
                       {"client", l.client_name},
                       {"topic", l.topic},
                       {"version", l.info.version},
                       {"latest", l.info.latest},
                       {"lag", l.lag()},
                       {"held_ns", l.info.held_ns}});
}

// Everything the command shows, gathered once for each of its formats.
struct Stats {
  wb_broker_info broker;
  std::vector<TopicStats> topics;
  std::vector<Lease> leases;        // of the topics shown
  uint32_t most_leases_held = 0;    // by one client, against leases_per_client
  uint64_t now_ns = 0;              // CLOCK_REALTIME when gathered
};

std::string used(uint32_t n, uint32_t max) { return std::to_string(n) + "/" + std::to_string(max); }

std::string broker_line(const Stats &s) {
  const wb_broker_info &b = s.broker;
  const uint64_t up = s.now_ns > b.started_ns ? s.now_ns - b.started_ns : 0;
  return fixed_string(b.name, sizeof b.name) + " (weightbusd " + wb::metrics::version_string(b.version) + ", pid " +
         std::to_string(b.pid) + "), up " + duration(up) + " since " + format_time(b.started_ns);
}

std::string used_line(const Stats &s) {
  const wb_broker_info &b = s.broker;
  return "topics " + used(b.topics, b.max_topics) + ", tensors " + used(b.tensors, b.max_tensors) +
         ", allocations " + used(b.allocations, b.max_allocations) + ", clients " + used(b.clients, b.max_clients) +
         ", ranks " + used(b.ranks, b.max_ranks) + ", leases of one client " +
         used(s.most_leases_held, b.leases_per_client);
}

std::string counted_line(const wb_broker_info &b) {
  return std::to_string(b.publishes) + " versions published, " + std::to_string(b.reclaims) +
         " clients reclaimed (holding " + std::to_string(b.reclaimed_leases) + " leases), " +
         std::to_string(b.adoptions) + " adoptions";
}

void print_broker_text(const Stats &s) {
  const wb_broker_info &b = s.broker;
  print_table({{"broker", broker_line(s)},
               {"segment", fixed_string(b.segment, sizeof b.segment) + ", made " + format_time(b.created_ns)},
               {"used", used_line(s)},
               {"counted", counted_line(b)}});
  out_line("");
}

void print_text(const Stats &s) {
  print_broker_text(s);
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "LATEST", "REPLICAS", "BYTES", "PER VERSION", "LEASES", "MAX LAG", "LONGEST HOLD"}};
  for (const TopicStats &t : s.topics)
    rows.push_back({t.name, std::to_string(t.info.latest), std::to_string(t.info.replicas), human_bytes(t.info.bytes),
                    human_bytes(t.info.replicas ? t.info.bytes / t.info.replicas : 0), std::to_string(t.tally.leases),
                    t.tally.leases ? std::to_string(t.tally.max_lag) : "-",
                    t.tally.leases ? duration(t.tally.longest_hold_ns) : "-"});
  print_table(rows);
  print_ranks_text(s.topics);
  if (s.leases.empty()) return out_line("\nno leases held");
  out_line("");
  std::vector<std::vector<std::string>> lrows = {{"CLIENT", "PID", "NAME", "TOPIC", "VERSION", "LAG", "HELD"}};
  for (const Lease &l : s.leases)
    lrows.push_back({std::to_string(l.info.client_id), std::to_string(l.info.pid), l.client_name, l.topic,
                     std::to_string(l.info.version), std::to_string(l.lag()), duration(l.info.held_ns)});
  print_table(lrows);
}

Json broker_json(const Stats &s) {
  const wb_broker_info &b = s.broker;
  return Json::object({{"name", fixed_string(b.name, sizeof b.name)},
                       {"version", wb::metrics::version_string(b.version)},
                       {"pid", b.pid},
                       {"segment", fixed_string(b.segment, sizeof b.segment)},
                       {"started_ns", b.started_ns},
                       {"created_ns", b.created_ns},
                       {"topics", b.topics},
                       {"max_topics", b.max_topics},
                       {"tensors", b.tensors},
                       {"max_tensors", b.max_tensors},
                       {"allocations", b.allocations},
                       {"max_allocations", b.max_allocations},
                       {"clients", b.clients},
                       {"max_clients", b.max_clients},
                       {"ranks", b.ranks},
                       {"max_ranks", b.max_ranks},
                       {"most_leases_held", s.most_leases_held},
                       {"leases_per_client", b.leases_per_client},
                       {"ring_slots", b.ring_slots},
                       {"publishes", b.publishes},
                       {"reclaims", b.reclaims},
                       {"reclaimed_leases", b.reclaimed_leases},
                       {"adoptions", b.adoptions}});
}

void print_json(const Stats &s, const std::string &socket) {
  Json t_items = Json::array(), l_items = Json::array();
  for (const TopicStats &t : s.topics) t_items.push_back(topic_json(t));
  for (const Lease &l : s.leases) l_items.push_back(lease_json(l));
  out_json(Json::object({{"socket", socket}, {"broker", broker_json(s)}, {"topics", t_items}, {"leases", l_items}}));
}

// Whether a process holds the topic's publisher role: its publisher, or every rank's (a rank's pid is 0 while
// none is attached).
bool publisher_alive(const TopicStats &t) {
  if (t.info.ranks == 0) return t.info.publisher_pid != 0;
  const auto attached = [](const wb_rank_info &r) { return r.pid != 0; };
  return !t.ranks.empty() && std::all_of(t.ranks.begin(), t.ranks.end(), attached);
}

void print_prometheus(const Stats &s) {
  wb::metrics::Figures figures{s.broker, s.most_leases_held, {}, s.now_ns};
  for (const TopicStats &t : s.topics) figures.topics.push_back({t.info, publisher_alive(t), t.tally});
  out_text(wb::metrics::exposition(figures));
}

Stats gather(weightbus::Client &client, const std::vector<std::string> &only, const std::string &socket) {
  Stats s{doing("describe the broker", [&] { return client.broker_info(); }), {}, {}, 0, 0};
  for (const wb_topic_info &info : doing("list topics", [&] { return client.topics(); })) {
    const std::string name = fixed_string(info.name, sizeof info.name);
    if (only.empty() || only.front() == name) s.topics.push_back({info, name, {}, {}});
  }
  if (!only.empty() && s.topics.empty())
    throw std::runtime_error("no topic '" + only.front() + "' on the broker at " + socket);
  for (TopicStats &t : s.topics) t.ranks = load_ranks(client, t);
  std::map<uint32_t, std::string> names;
  for (const wb_client_info &c : doing("list clients", [&] { return client.clients(); })) {
    names[c.id] = fixed_string(c.name, sizeof c.name);
    s.most_leases_held = std::max(s.most_leases_held, c.leases);
  }
  for (const wb_lease_info &info : doing("list leases", [&] { return client.leases(); })) {
    Lease l{info, fixed_string(info.topic, sizeof info.topic), names[info.client_id]};
    auto t = std::find_if(s.topics.begin(), s.topics.end(), [&](const TopicStats &x) { return x.name == l.topic; });
    if (t == s.topics.end()) continue;
    t->tally.add(info);
    s.leases.push_back(std::move(l));
  }
  s.now_ns = uint64_t(wb::realtime_ns());
  return s;
}

int run_stats(const GlobalOptions &g, Args &args) {
  const bool prometheus = args.flag("--prometheus");
  const std::vector<std::string> only = args.positionals(0, 1);
  if (prometheus && g.json) throw UsageError("--prometheus and --json are two formats: pick one");
  const std::string socket = socket_path(g);
  weightbus::Client client = attach(g, "weightbus stats");
  const Stats s = gather(client, only, socket);
  if (prometheus) return print_prometheus(s), 0;
  if (g.json) return print_json(s, socket), 0;
  return print_text(s), 0;
}

}  // namespace

const Command kStatsCommand = {
    "stats",
    "the broker's limits and counters; reader lag, lease holds and bytes per topic",
    "weightbus stats [TOPIC] [--json | --prometheus]",
    R"HELP(Show the broker first: its name, version, pid and uptime, its segment, what is used of each of its limits
(weightbusd --max-topics, --max-tensors, --max-allocations, --max-clients, --max-ranks, and of --leases-per-client
the most leases one client holds; a removed topic's entries stay used) and its counters since the segment was made
(versions published, clients reclaimed and the leases they still held, adoptions of the segment by a restarted
broker). Then, for every topic (or just TOPIC): its latest version, replicas, bytes of shared storage (all
replicas, and one version's worth), how many leases readers hold on it, the largest lag (latest version minus
a leased version) and the longest time a lease has been held. Then every lease: the client holding it (id,
pid, name), the topic and version, its lag and how long it has been held. A reader with a growing lag or a
long hold is the one that keeps an R = 1 publisher waiting or pins old replicas. A lease of the version after
the latest (lag 0) is an arm (wb_plan_arm): a reader waiting for that version, which keeps no one waiting.
For a sharded topic (docs/sharded-models.md), every rank: its publisher's pid, the last version it published,
the one it is writing, how many versions it is behind, when it last published; and which ranks a version
some rank already published waits for (a version is committed once every rank has published it).

options:
  --json         print {"socket", "broker": {"name", "version", "pid", "segment", "started_ns", "created_ns",
                 "topics", "max_topics", "tensors", "max_tensors", "allocations", "max_allocations", "clients",
                 "max_clients", "ranks", "max_ranks", "most_leases_held", "leases_per_client", "ring_slots",
                 "publishes", "reclaims", "reclaimed_leases", "adoptions"}, "topics": [{"name", "latest",
                 "replicas", "bytes", "version_bytes", "leases", "readers", "max_lag", "longest_hold_ns",
                 "published_ns", "ranks": [{"rank", "pid", "sealed", "shards", "dirty", "published", "writing",
                 "lag", "published_ns", "begin_ns", "bytes"}], "waits_for"}], "leases": [{"client_id", "pid",
                 "client", "topic", "version", "latest", "lag", "held_ns"}]}
  --prometheus   print the figures as Prometheus metrics (text format 0.0.4), the ones weightbusd --metrics
                 serves: for a node exporter's textfile collector, or a one-off look. Counters end in _total:
                 rate() turns them into per-second figures. docs/operations.md lists every metric.

examples:
  weightbus stats
  weightbus stats policy --json
  weightbus stats --prometheus > /var/lib/node_exporter/textfile/weightbus.prom.$$ &&
    mv /var/lib/node_exporter/textfile/weightbus.prom.$$ /var/lib/node_exporter/textfile/weightbus.prom
)HELP",
    "prometheus",
    run_stats,
};

}  // namespace wbcli
