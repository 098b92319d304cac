// weightbus map: register the zero-copy views a layout spec describes.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "output_json.hpp"
#include "mapping_spec.hpp"

namespace wbcli {
namespace {

wb_view_spec view_spec(const PlannedView &v) {
  const wb_tensor_info &p = v.parent->info;
  wb_view_spec spec = WB_VIEW_SPEC_INIT;
  spec.name = v.name.c_str();
  spec.parent = v.parent->name.c_str();
  spec.dtype = p.dtype;
  spec.ndim = p.ndim;
  for (uint32_t d = 0; d < p.ndim; ++d) {
    spec.shape[d] = p.shape[d];
    spec.strides[d] = p.strides[d];
  }
  spec.shape[0] = v.rows;
  spec.byte_offset = static_cast<uint64_t>(v.first_row * p.strides[0]) * wb_dtype_size(p.dtype);
  return spec;
}

int run_map(const GlobalOptions &g, Args &args) {
  const std::optional<std::string> spec_path = args.value("--spec");
  const std::optional<std::string> config = args.value("--config");
  const std::vector<std::string> sets = args.values("--set");
  const std::string topic_name = args.positionals(1, 1, "TOPIC").front();
  if (!spec_path) throw UsageError("missing --spec FILE");
  const MappingSpec spec = load_spec(*spec_path);
  const Values values = load_values(config, sets);

  weightbus::Client client = attach(g, "weightbus map");
  weightbus::Topic topic = open_topic(client, topic_name);
  const std::vector<TopicTensor> tensors = topic_tensors(topic, topic_name);
  const std::vector<PlannedView> views = plan_views(spec, values, tensors);  // all checked before any is added
  Json items = Json::array();
  std::vector<std::vector<std::string>> rows = {{"VIEW", "PARENT", "ROWS"}};
  for (const PlannedView &v : views) {
    const wb_view_spec vs = view_spec(v);
    doing("add view '" + v.name + "' of '" + v.parent->name + "'", [&] { topic.view(vs); });
    char range[64];  // not a chain of std::string +: GCC 12 at -O3 warns falsely (-Wrestrict) on it
    snprintf(range, sizeof(range), "[%lld, %lld)", (long long)v.first_row, (long long)(v.first_row + v.rows));
    rows.push_back({v.name, v.parent->name, range});
    items.push_back(Json::object({{"name", v.name},
                                  {"parent", v.parent->name},
                                  {"first_row", v.first_row},
                                  {"rows", v.rows},
                                  {"byte_offset", vs.byte_offset}}));
  }
  if (g.json) return out_json(Json::object({{"topic", topic_name}, {"views", items}})), 0;
  print_table(rows);
  out_line(std::to_string(views.size()) + " views on topic '" + topic_name + "'");
  return 0;
}

}  // namespace

const Command kMapCommand = {
    "map",
    "add zero-copy views that map one layout onto another (a JSON spec)",
    "weightbus map --spec FILE TOPIC [--config config.json] [--set NAME=N]... [--json]",
    R"HELP(Add the views a layout spec describes to TOPIC, e.g. vLLM's fused qkv_proj seen as q_proj, k_proj and
v_proj, and gate_up_proj as gate_proj and up_proj. Views share their parent's bytes (no copy) and follow its
versions. Each parent pattern ({layer} matches digits) is matched against the topic's tensors and views; the
matches' first dimension is split into consecutive row ranges, one view each, which must cover all its rows.
Row counts are integer expressions (+ - * / % and parentheses; / must divide exactly) over the integer values
of the model's config.json (nested ones by dotted or, when unambiguous, plain names), --set values (which win)
and the spec's "defaults". Every view is computed and checked before the first is added. Adding the same view
again is accepted, so map may run again after a restart. Specs for Llama- and Qwen2-style models are installed
in share/weightbus/specs (tools/specs in the source tree); docs/checkpoint.md describes the format.

options:
  --spec FILE        the layout spec (JSON)
  --config FILE      a model's config.json
  --set NAME=N       a value, over the config's (repeatable)
  --json             print {"topic", "views": [{"name", "parent", "first_row", "rows", "byte_offset"}]}

examples:
  weightbus map --spec /usr/local/share/weightbus/specs/llama.json policy --config Llama-3-8B/config.json
  weightbus map --spec tools/specs/qwen2.json policy --set num_attention_heads=14 --set num_key_value_heads=2 \
      --set hidden_size=896 --set intermediate_size=4864
)HELP",
    "spec: config: set:",
    run_map,
};

}  // namespace wbcli
