// Layout mapping specs: JSON files that say how to see one engine's tensors under another engine's names, as
// zero-copy views (e.g. vLLM's fused qkv_proj as Hugging Face's q_proj, k_proj and v_proj).
//
//   {
//     "description": "...",
//     "defaults": {"head_dim": "hidden_size / num_attention_heads"},   // used when not given otherwise
//     "views": [
//       {"parent": "model.layers.{layer}.self_attn.qkv_proj.weight",   // {x} matches digits, bound as x
//        "split": [{"name": "model.layers.{layer}.self_attn.q_proj.weight",
//                   "rows": "num_attention_heads * head_dim"}, ...]}
//     ]
//   }
//
// Each parent pattern is matched against every tensor and view of the topic; a match splits its first
// dimension into consecutive row ranges, one view each, which must cover the parent's rows exactly (a check
// that catches a wrong head count). Row counts are expressions (expr.hpp) over the values of a model's
// config.json (integers, nested ones by dotted names), `--set name=N`, the spec's defaults and the bound
// placeholders.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "expr.hpp"
#include "topic_tensors.hpp"

namespace wbcli {

struct SplitPart {
  std::string name;  // pattern
  std::string rows;  // expression
};

struct ViewRule {
  std::string parent;  // pattern
  std::vector<SplitPart> split;
};

struct MappingSpec {
  std::string path;
  std::vector<std::pair<std::string, std::string>> defaults;  // in the file's order: later ones may use earlier
  std::vector<ViewRule> rules;
};

// Throws std::runtime_error naming the file and the place in it.
MappingSpec load_spec(const std::string &path);

// config.json's integer values (dotted names for nested ones, and the plain name when unambiguous), then
// each "name=N" of sets over them. Throws UsageError for a malformed --set, std::runtime_error for the file.
Values load_values(const std::optional<std::string> &config_path, const std::vector<std::string> &sets);

struct PlannedView {
  std::string name;
  const TopicTensor *parent;
  int64_t first_row;
  int64_t rows;
};

// The views the spec asks for on these tensors. Throws std::runtime_error naming the rule, the tensor and what
// does not fit; a spec that matches no tensor at all is an error too.
std::vector<PlannedView> plan_views(const MappingSpec &spec, const Values &values,
                                    const std::vector<TopicTensor> &tensors);

}  // namespace wbcli
