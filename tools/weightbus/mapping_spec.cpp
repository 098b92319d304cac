#include "mapping_spec.hpp"

#include <fcntl.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <cctype>

#include "file_io.hpp"

namespace wbcli {
namespace {

using json = nlohmann::ordered_json;

json read_json(const std::string &path, const char *what) {
  FileDescriptor fd = open_or_throw(path, O_RDONLY);
  std::string text(file_size(fd.get(), path), '\0');
  read_exact(fd.get(), text.data(), text.size(), 0, path);
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw std::runtime_error(path + ": " + what + " is not valid JSON");
  if (!doc.is_object()) throw std::runtime_error(path + ": " + what + " is not a JSON object");
  return doc;
}

// An expression given as a JSON string or integer.
std::string expression(const json &v, const std::string &where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  throw std::runtime_error(where + " is not an expression (a string or an integer)");
}

std::string string_field(const json &o, const char *key, const std::string &where) {
  if (!o.is_object() || !o.contains(key) || !o[key].is_string())
    throw std::runtime_error(where + " has no \"" + key + "\" string");
  return o[key].get<std::string>();
}

// A pattern as literal text and {name} placeholders, in order.
struct Part {
  bool placeholder;
  std::string text;  // the literal, or the placeholder's name
};

bool is_name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (!first && std::isdigit(static_cast<unsigned char>(c)));
}

std::vector<Part> split_pattern(const std::string &pattern, const std::string &where) {
  std::vector<Part> parts;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '}') throw std::runtime_error(where + ": '" + pattern + "' has a '}' without its '{'");
    if (pattern[i] != '{') {
      const size_t end = std::min(pattern.find('{', i), pattern.find('}', i));
      parts.push_back({false, pattern.substr(i, end == std::string::npos ? std::string::npos : end - i)});
      i = end == std::string::npos ? pattern.size() : end;
      continue;
    }
    const size_t close = pattern.find('}', i);
    const std::string name = close == std::string::npos ? "" : pattern.substr(i + 1, close - i - 1);
    bool valid = !name.empty();
    for (size_t k = 0; k < name.size(); ++k) valid = valid && is_name_char(name[k], k == 0);
    if (!valid) throw std::runtime_error(where + ": '" + pattern + "' has a brace that is not a {name} placeholder");
    parts.push_back({true, name});
    i = close + 1;
  }
  return parts;
}

std::vector<std::string> placeholders(const std::string &pattern, const std::string &where) {
  std::vector<std::string> names;
  for (const Part &p : split_pattern(pattern, where))
    if (p.placeholder) names.push_back(p.text);
  return names;
}

// Matches name[at..] against parts[k..]; a placeholder takes one or more digits (backtracking over how many).
bool match(const std::vector<Part> &parts, size_t k, const std::string &name, size_t at,
           std::map<std::string, std::string> &bound) {
  if (k == parts.size()) return at == name.size();
  const Part &p = parts[k];
  if (!p.placeholder) return name.compare(at, p.text.size(), p.text) == 0 && match(parts, k + 1, name, at + p.text.size(), bound);
  size_t end = at;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  for (; end > at; --end) {
    const std::string digits = name.substr(at, end - at);
    const auto previous = bound.find(p.text);
    if (previous != bound.end() && previous->second != digits) continue;  // {x} twice must match the same digits
    const bool fresh = previous == bound.end();
    bound[p.text] = digits;
    if (match(parts, k + 1, name, end, bound)) return true;
    if (fresh) bound.erase(p.text);
  }
  return false;
}

ViewRule parse_rule(const json &v, const std::string &where) {
  ViewRule rule{string_field(v, "parent", where), {}};
  const std::vector<std::string> bound = placeholders(rule.parent, where + ".parent");
  if (!v.contains("split") || !v["split"].is_array() || v["split"].empty())
    throw std::runtime_error(where + " has no \"split\" list");
  for (size_t k = 0; k < v["split"].size(); ++k) {
    const std::string at = where + ".split[" + std::to_string(k) + "]";
    const json &part = v["split"][k];
    SplitPart p{string_field(part, "name", at), ""};
    if (!part.contains("rows")) throw std::runtime_error(at + " has no \"rows\"");
    p.rows = expression(part["rows"], at + ".rows");
    for (const std::string &n : placeholders(p.name, at + ".name"))
      if (std::find(bound.begin(), bound.end(), n) == bound.end())
        throw std::runtime_error(at + ".name: '{" + n + "}' does not appear in the parent pattern");
    rule.split.push_back(std::move(p));
  }
  return rule;
}

void flatten(const json &v, const std::string &prefix, Values &out, std::map<std::string, int> &plain_seen) {
  for (const auto &[key, value] : v.items()) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) flatten(value, name, out, plain_seen);
    if (!value.is_number_integer()) continue;
    out[name] = value.get<int64_t>();
    if (!prefix.empty()) ++plain_seen[key];
  }
}

// A config's nested values (e.g. text_config.num_attention_heads) are also reachable by their plain name, unless
// the plain name is at the top level or appears in more than one place.
Values config_values(const json &doc) {
  Values values;
  std::map<std::string, int> plain_seen;
  flatten(doc, "", values, plain_seen);
  Values all = values;
  for (const auto &[name, v] : values) {
    const size_t dot = name.rfind('.');
    if (dot == std::string::npos) continue;
    const std::string plain = name.substr(dot + 1);
    if (plain_seen[plain] == 1 && !values.contains(plain)) all[plain] = v;
  }
  return all;
}

std::string substitute(std::string pattern, const std::map<std::string, std::string> &bound) {
  for (const auto &[name, digits] : bound) {
    const std::string ph = "{" + name + "}";
    for (size_t at; (at = pattern.find(ph)) != std::string::npos;) pattern.replace(at, ph.size(), digits);
  }
  return pattern;
}

// The views of one rule on one matching tensor.
void plan_match(const ViewRule &rule, const TopicTensor &parent, const std::map<std::string, std::string> &bound,
                Values values, std::vector<PlannedView> &out) {
  for (const auto &[name, digits] : bound) {
    if (digits.size() > 18) throw std::runtime_error("'" + parent.name + "': {" + name + "} is " + digits + ", too large");
    values[name] = std::stoll(digits);
  }
  if (parent.info.ndim == 0) throw std::runtime_error("'" + parent.name + "' is a scalar: it has no rows to split");
  const int64_t parent_rows = parent.info.shape[0];
  int64_t at = 0;
  for (const SplitPart &part : rule.split) {
    const std::string name = substitute(part.name, bound);
    int64_t rows = 0;
    try {
      rows = evaluate(part.rows, values);
    } catch (const ExprError &e) {
      throw std::runtime_error("view '" + name + "' of '" + parent.name + "': rows " + e.what());
    }
    if (rows < 0 || rows > parent_rows - at)
      throw std::runtime_error("view '" + name + "': rows [" + std::to_string(at) + ", " + std::to_string(at + rows) +
                               ") fall outside parent '" + parent.name + "' of " + std::to_string(parent_rows) +
                               " rows");
    out.push_back({name, &parent, at, rows});
    at += rows;
  }
  if (at != parent_rows)
    throw std::runtime_error("the views of '" + parent.name + "' cover " + std::to_string(at) + " of its " +
                             std::to_string(parent_rows) + " rows: check the config values");
}

}  // namespace

MappingSpec load_spec(const std::string &path) {
  const json doc = read_json(path, "the spec");
  MappingSpec spec{path, {}, {}};
  if (doc.contains("defaults")) {
    if (!doc["defaults"].is_object()) throw std::runtime_error(path + ": \"defaults\" is not an object");
    for (const auto &[name, v] : doc["defaults"].items())
      spec.defaults.emplace_back(name, expression(v, path + ": defaults." + name));
  }
  if (!doc.contains("views") || !doc["views"].is_array() || doc["views"].empty())
    throw std::runtime_error(path + ": the spec has no \"views\" list");
  for (size_t k = 0; k < doc["views"].size(); ++k)
    spec.rules.push_back(parse_rule(doc["views"][k], path + ": views[" + std::to_string(k) + "]"));
  return spec;
}

Values load_values(const std::optional<std::string> &config_path, const std::vector<std::string> &sets) {
  Values values = config_path ? config_values(read_json(*config_path, "the config")) : Values{};
  for (const std::string &s : sets) {
    const size_t eq = s.find('=');
    int64_t v = 0;
    try {
      size_t used = 0;
      if (eq == std::string::npos || eq == 0) throw std::invalid_argument(s);
      v = std::stoll(s.substr(eq + 1), &used);
      if (used != s.size() - eq - 1) throw std::invalid_argument(s);
    } catch (const std::logic_error &) {
      throw UsageError("--set needs NAME=INTEGER, not '" + s + "'");
    }
    values[s.substr(0, eq)] = v;
  }
  return values;
}

std::vector<PlannedView> plan_views(const MappingSpec &spec, const Values &given, const std::vector<TopicTensor> &tensors) {
  Values values = given;
  for (const auto &[name, text] : spec.defaults) {
    if (values.contains(name)) continue;
    try {
      values[name] = evaluate(text, values);
    } catch (const ExprError &e) {
      throw std::runtime_error(spec.path + ": defaults." + name + ": " + e.what());
    }
  }
  std::vector<PlannedView> views;
  for (const ViewRule &rule : spec.rules) {
    const std::vector<Part> parts = split_pattern(rule.parent, rule.parent);
    for (const TopicTensor &t : tensors) {
      std::map<std::string, std::string> bound;
      if (match(parts, 0, t.name, 0, bound)) plan_match(rule, t, bound, values, views);
    }
  }
  if (views.empty())
    throw std::runtime_error(spec.path + ": no tensor of the topic matches a parent pattern of the spec");
  return views;
}

}  // namespace wbcli
