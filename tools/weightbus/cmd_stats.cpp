// weightbus stats: how far behind each reader is, how long leases are held, and the bytes of each topic.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "commands.hpp"
#include "json.hpp"
#include "ranks.hpp"

namespace wbcli {
namespace {

struct TopicStats {
  wb_topic_info info;
  std::string name;
  uint32_t leases = 0;
  uint64_t max_lag = 0;
  uint64_t longest_hold_ns = 0;
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

std::vector<std::string> rank_items(const TopicStats &t) {
  std::vector<std::string> items;
  for (const wb_rank_info &r : t.ranks) items.push_back(rank_json(r, t.ranks, t.info.latest).text());
  return items;
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

std::string topic_json(const TopicStats &t) {
  return JsonObject()
      .str("name", t.name)
      .num("latest", t.info.latest)
      .num("replicas", t.info.replicas)
      .num("bytes", t.info.bytes)
      .num("version_bytes", t.info.replicas ? t.info.bytes / t.info.replicas : 0)
      .num("leases", t.leases)
      .num("max_lag", t.max_lag)
      .num("longest_hold_ns", t.longest_hold_ns)
      .raw("ranks", json_array(rank_items(t)))
      .str("waits_for", waits_for(t.ranks, t.info.latest))
      .text();
}

std::string lease_json(const Lease &l) {
  return JsonObject()
      .num("client_id", l.info.client_id)
      .num("pid", l.info.pid)
      .str("client", l.client_name)
      .str("topic", l.topic)
      .num("version", l.info.version)
      .num("latest", l.info.latest)
      .num("lag", l.lag())
      .num("held_ns", l.info.held_ns)
      .text();
}

void print_text(const std::vector<TopicStats> &topics, const std::vector<Lease> &leases) {
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "LATEST", "REPLICAS", "BYTES", "PER VERSION", "LEASES", "MAX LAG", "LONGEST HOLD"}};
  for (const TopicStats &t : topics)
    rows.push_back({t.name, std::to_string(t.info.latest), std::to_string(t.info.replicas), human_bytes(t.info.bytes),
                    human_bytes(t.info.replicas ? t.info.bytes / t.info.replicas : 0), std::to_string(t.leases),
                    t.leases ? std::to_string(t.max_lag) : "-", t.leases ? duration(t.longest_hold_ns) : "-"});
  print_table(rows);
  print_ranks_text(topics);
  if (leases.empty()) return out_line("\nno leases held");
  out_line("");
  std::vector<std::vector<std::string>> lrows = {{"CLIENT", "PID", "NAME", "TOPIC", "VERSION", "LAG", "HELD"}};
  for (const Lease &l : leases)
    lrows.push_back({std::to_string(l.info.client_id), std::to_string(l.info.pid), l.client_name, l.topic,
                     std::to_string(l.info.version), std::to_string(l.lag()), duration(l.info.held_ns)});
  print_table(lrows);
}

int run_stats(const GlobalOptions &g, Args &args) {
  const std::vector<std::string> only = args.positionals(0, 1);
  const std::string socket = socket_path(g);
  weightbus::Client client = attach(g, "weightbus stats");
  std::vector<TopicStats> topics;
  for (const wb_topic_info &info : doing("list topics", [&] { return client.topics(); })) {
    const std::string name = fixed_string(info.name, sizeof info.name);
    if (only.empty() || only.front() == name) topics.push_back({info, name, 0, 0, 0, {}});
  }
  if (!only.empty() && topics.empty()) throw std::runtime_error("no topic '" + only.front() + "' on the broker at " + socket);
  for (TopicStats &t : topics) t.ranks = load_ranks(client, t);
  std::map<uint32_t, std::string> names;
  for (const wb_client_info &c : doing("list clients", [&] { return client.clients(); })) names[c.id] = fixed_string(c.name, sizeof c.name);
  std::vector<Lease> leases;
  for (const wb_lease_info &info : doing("list leases", [&] { return client.leases(); })) {
    Lease l{info, fixed_string(info.topic, sizeof info.topic), names[info.client_id]};
    auto t = std::find_if(topics.begin(), topics.end(), [&](const TopicStats &x) { return x.name == l.topic; });
    if (t == topics.end()) continue;
    ++t->leases;
    t->max_lag = std::max(t->max_lag, l.lag());
    t->longest_hold_ns = std::max(t->longest_hold_ns, info.held_ns);
    leases.push_back(std::move(l));
  }
  if (!g.json) return print_text(topics, leases), 0;
  std::vector<std::string> t_items, l_items;
  for (const TopicStats &t : topics) t_items.push_back(topic_json(t));
  for (const Lease &l : leases) l_items.push_back(lease_json(l));
  out_line(JsonObject().str("socket", socket).raw("topics", json_array(t_items)).raw("leases", json_array(l_items)).text());
  return 0;
}

}  // namespace

const Command kStatsCommand = {
    "stats",
    "reader lag, lease hold times and bytes, per topic and per lease",
    "weightbus stats [TOPIC] [--json]",
    R"HELP(Show, for every topic (or just TOPIC): its latest version, replicas, bytes of shared storage (all
replicas, and one version's worth), how many leases readers hold on it, the largest lag (latest version minus
a leased version) and the longest time a lease has been held. Then every lease: the client holding it (id,
pid, name), the topic and version, its lag and how long it has been held. A reader with a growing lag or a
long hold is the one that keeps an R = 1 publisher waiting or pins old replicas.
For a sharded topic (docs/sharded-models.md), every rank: its publisher's pid, the last version it published,
the one it is writing, how many versions it is behind, when it last published; and which ranks a version
some rank already published waits for (a version is committed once every rank has published it).

options:
  --json   print {"socket", "topics": [{"name", "latest", "replicas", "bytes", "version_bytes", "leases",
           "max_lag", "longest_hold_ns", "ranks": [{"rank", "pid", "sealed", "shards", "dirty", "published",
           "writing", "lag", "published_ns", "begin_ns", "bytes"}], "waits_for"}], "leases": [{"client_id",
           "pid", "client", "topic", "version", "latest", "lag", "held_ns"}]}

examples:
  weightbus stats
  weightbus stats policy --json
)HELP",
    run_stats,
};

}  // namespace wbcli
