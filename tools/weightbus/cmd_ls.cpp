// weightbus ls: the broker's topics and, on request, their tensors.
#include <string>
#include <vector>

#include "commands.hpp"
#include "output_json.hpp"
#include "topic_tensors.hpp"

namespace wbcli {
namespace {

using Tensor = TopicTensor;

struct Topic {
  wb_topic_info info;
  std::string name;
  std::vector<Tensor> tensors;
};

// Tensors are only in the registry's per-topic view, so listing them means opening the topic as a reader.
Topic load_topic(weightbus::Client &client, const std::string &name) {
  const weightbus::Topic topic = open_topic(client, name);
  Topic t{doing("describe topic '" + name + "'", [&] { return topic.info(); }), name, {}};
  t.tensors = topic_tensors(topic, name);
  return t;
}

std::vector<Topic> load(weightbus::Client &client, const std::vector<std::string> &only, bool with_tensors) {
  if (!only.empty()) return {load_topic(client, only.front())};
  std::vector<Topic> topics;
  for (const wb_topic_info &info : doing("list topics", [&] { return client.topics(); })) {
    const std::string name = fixed_string(info.name, sizeof info.name);
    topics.push_back(with_tensors ? load_topic(client, name) : Topic{info, name, {}});
  }
  return topics;
}

std::string or_dash(uint64_t n) { return n == 0 ? "-" : std::to_string(n); }

// "-" for a plain topic; "sharded N ranks", and whether the layout is complete yet (versions start once it is).
std::string sharding(const wb_topic_info &i) {
  if (i.ranks == 0) return "-";
  return "sharded " + std::to_string(i.ranks) + " ranks" + (i.layout_complete ? "" : ", layout incomplete");
}

void print_topics_text(const std::vector<Topic> &topics, const std::string &socket) {
  if (topics.empty()) return out_line("no topics on the broker at " + socket);
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "VERSION", "REPLICAS", "TENSORS", "BYTES", "PUBLISHER", "DIRTY", "SHARDS"}};
  for (const Topic &t : topics) {
    const wb_topic_info &i = t.info;
    rows.push_back({t.name, or_dash(i.latest), std::to_string(i.replicas), std::to_string(i.tensor_count),
                    human_bytes(i.bytes), or_dash(i.publisher_pid), i.dirty ? "yes" : "no", sharding(i)});
  }
  print_table(rows);
}

void print_tensors_text(const Topic &topic) {
  out_line("");
  out_line(topic.name + ":");
  if (topic.tensors.empty()) return out_line("  no tensors");
  std::vector<std::vector<std::string>> rows = {{"TENSOR", "DTYPE", "SHAPE", "BYTES", "VIEW", "VERSION"}};
  for (const Tensor &t : topic.tensors) {
    const wb_tensor_info &i = t.info;
    rows.push_back({t.name, dtype_string(i.dtype), shape_string(i.shape, i.ndim), human_bytes(i.nbytes),
                    i.is_view ? "yes" : "no", or_dash(i.version)});
  }
  print_table(rows, "  ");
}

Json topic_json(const Topic &t, bool with_tensors) {
  Json o = topic_info_json(t.name, t.info);
  if (!with_tensors) return o;
  Json &tensors = o["tensors"] = Json::array();
  for (const Tensor &tensor : t.tensors) tensors.push_back(tensor_json(tensor));
  return o;
}

int run_ls(const GlobalOptions &g, Args &args) {
  const bool long_listing = args.flag("--long");
  const std::vector<std::string> only = args.positionals(0, 1);
  const bool with_tensors = long_listing || !only.empty();
  const std::string socket = socket_path(g);
  weightbus::Client client = attach(g, "weightbus ls");
  const std::vector<Topic> topics = load(client, only, with_tensors);
  if (g.json) {
    Json items = Json::array();
    for (const Topic &t : topics) items.push_back(topic_json(t, with_tensors));
    out_json(Json::object({{"socket", socket}, {"topics", items}}));
    return 0;
  }
  print_topics_text(topics, socket);
  if (with_tensors)
    for (const Topic &t : topics) print_tensors_text(t);
  return 0;
}

}  // namespace

const Command kLsCommand = {
    "ls",
    "list topics (and with -l or a TOPIC, their tensors)",
    "weightbus ls [-l] [TOPIC] [--json]",
    R"HELP(List the broker's topics: latest version, replicas, number of tensors, bytes of shared memory (all
replicas), the publisher's pid ('-' when none is attached) and whether the topic is dirty (left half-written
by a publisher that died; readers are refused until a new version is published), and for a sharded topic
(one model published by N ranks, docs/sharded-models.md) "sharded N ranks", with "layout incomplete" until
every rank has sealed its shards; its tensors are the logical tensors, whole.
With TOPIC, or -l for every topic, also list each tensor: name, dtype, shape, bytes, whether it is a view of
another tensor, and the version that last wrote it.

options:
  -l, --long   list the tensors of every topic
  --json       print one JSON document: {"socket": ..., "topics": [{"name": ..., "latest": ..., "ranks": ...,
               "layout_complete": ..., "tensors": [...]}]} (ranks 0: a plain topic)

examples:
  weightbus ls
  weightbus ls policy
  weightbus ls -l --json
)HELP",
    "l|long",
    run_ls,
};

}  // namespace wbcli
