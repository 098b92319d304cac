// weightbus diagnose: which names a topic and a safetensors checkpoint do not share.
#include <map>
#include <string>
#include <vector>

#include "commands.hpp"
#include "output_json.hpp"
#include "safetensors.hpp"
#include "topic_tensors.hpp"

namespace wbcli {
namespace {

struct Layout {
  int32_t dtype;
  std::vector<int64_t> shape;
  bool operator==(const Layout &) const = default;
};

std::string describe(const Layout &l) {
  return dtype_string(l.dtype) + " " + shape_string(l.shape.data(), static_cast<uint32_t>(l.shape.size()));
}

struct Report {
  std::vector<std::string> only_topic, only_checkpoint, mismatched;  // mismatched: "name: topic X, file Y"
  Json mismatched_json = Json::array();
  bool differs() const { return !only_topic.empty() || !only_checkpoint.empty() || !mismatched.empty(); }
};

Report compare(const std::map<std::string, Layout> &topic, const std::map<std::string, Layout> &file) {
  Report r;
  for (const auto &[name, layout] : topic) {
    const auto it = file.find(name);
    if (it == file.end()) {
      r.only_topic.push_back(name);
    } else if (!(it->second == layout)) {
      r.mismatched.push_back(name + ": topic " + describe(layout) + ", checkpoint " + describe(it->second));
      r.mismatched_json.push_back(
          Json::object({{"name", name}, {"topic", describe(layout)}, {"checkpoint", describe(it->second)}}));
    }
  }
  for (const auto &[name, _] : file)
    if (!topic.contains(name)) r.only_checkpoint.push_back(name);
  return r;
}

void print_list(const std::string &title, const std::vector<std::string> &items) {
  if (items.empty()) return;
  out_line(title + " (" + std::to_string(items.size()) + "):");
  for (const std::string &s : items) out_line("  " + s);
}

int run_diagnose(const GlobalOptions &g, Args &args) {
  const std::optional<std::string> against = args.value("--against");
  const bool exit_code = args.flag("--exit-code");
  const std::string topic_name = args.positionals(1, 1, "TOPIC").front();
  if (!against) throw UsageError("missing --against PATH");
  const st::Checkpoint cp = st::open_checkpoint(*against);
  std::map<std::string, Layout> file;
  for (const st::Shard &s : cp.shards)
    for (const st::Entry &e : s.header.tensors) file[e.name] = {e.dtype, e.shape};

  weightbus::Client client = attach(g, "weightbus diagnose");
  const weightbus::Topic topic = open_topic(client, topic_name);
  std::map<std::string, Layout> in_topic;
  for (const TopicTensor &t : topic_tensors(topic, topic_name))
    in_topic[t.name] = {t.info.dtype, std::vector<int64_t>(t.info.shape, t.info.shape + t.info.ndim)};
  const Report r = compare(in_topic, file);
  const int status = exit_code && r.differs() ? kExitDiffers : 0;

  if (g.json) {
    out_json(Json::object({{"topic", topic_name},
                           {"checkpoint", cp.path},
                           {"topic_names", in_topic.size()},
                           {"checkpoint_names", file.size()},
                           {"only_in_topic", r.only_topic},
                           {"only_in_checkpoint", r.only_checkpoint},
                           {"mismatched", r.mismatched_json}}));
    return status;
  }
  print_list("only in topic '" + topic_name + "'", r.only_topic);
  print_list("only in " + cp.path, r.only_checkpoint);
  print_list("same name, another dtype or shape", r.mismatched);
  const size_t common = in_topic.size() - r.only_topic.size();
  out_line(std::to_string(common) + " names in both (" + std::to_string(r.mismatched.size()) + " of them differ), " +
           std::to_string(r.only_topic.size()) + " only in the topic, " + std::to_string(r.only_checkpoint.size()) +
           " only in the checkpoint");
  return status;
}

}  // namespace

const Command kDiagnoseCommand = {
    "diagnose",
    "compare a topic's tensor names with a safetensors checkpoint's",
    "weightbus diagnose TOPIC --against PATH [--exit-code] [--json]",
    R"HELP(List the names present on one side only: tensors and views of TOPIC that the checkpoint at PATH lacks,
and the reverse; and names on both sides whose dtype or shape differ. Use it to see what a layout spec
(`weightbus map`) still has to provide before an engine that expects the checkpoint's names reads the topic.
PATH is a .safetensors file, an index (model.safetensors.index.json) or a folder holding either; its headers
are validated as `weightbus load` does. Exits 0 whatever the differences (1 when something fails), unless
--exit-code is given: then 3 when there is any difference (a name on one side only, or another dtype or
shape), 0 when there is none.

options:
  --against PATH   the checkpoint to compare with
  --exit-code      exit 3 when the two differ in any way (for scripts: `diagnose ... --exit-code || ...`)
  --json           print {"topic", "checkpoint", "topic_names", "checkpoint_names", "only_in_topic",
                   "only_in_checkpoint", "mismatched": [{"name", "topic", "checkpoint"}]}

examples:
  weightbus diagnose policy --against ./Llama-3-8B
  weightbus diagnose policy --against ckpt/model.safetensors.index.json --json
  weightbus diagnose policy --against ./Llama-3-8B --exit-code && echo "same names, dtypes and shapes"
)HELP",
    "against: exit-code",
    run_diagnose,
};

}  // namespace wbcli
