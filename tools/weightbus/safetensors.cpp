#include "safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include <weightbus/weightbus.h>

#include "file_io.hpp"

namespace wbcli::st {
namespace {

using ordered_json = nlohmann::ordered_json;

struct DtypeName {
  int32_t dtype;
  const char *name;
};

const DtypeName kDtypes[] = {
    {WB_DTYPE_BOOL, "BOOL"}, {WB_DTYPE_U8, "U8"},         {WB_DTYPE_I8, "I8"},           {WB_DTYPE_I16, "I16"},
    {WB_DTYPE_I32, "I32"},   {WB_DTYPE_I64, "I64"},       {WB_DTYPE_F16, "F16"},         {WB_DTYPE_BF16, "BF16"},
    {WB_DTYPE_F32, "F32"},   {WB_DTYPE_F64, "F64"},       {WB_DTYPE_F8E4M3, "F8_E4M3"}, {WB_DTYPE_F8E5M2, "F8_E5M2"},
    {WB_DTYPE_U16, "U16"},   {WB_DTYPE_U32, "U32"},       {WB_DTYPE_U64, "U64"},
};

std::string known_dtypes() {
  std::string list;
  for (const DtypeName &d : kDtypes) list += std::string(list.empty() ? "" : ", ") + d.name;
  return list;
}

[[noreturn]] void refuse(const std::string &path, const std::string &rule) { throw FormatError(path + ": " + rule); }

[[noreturn]] void refuse_tensor(const std::string &path, const std::string &name, const std::string &rule) {
  refuse(path, "tensor '" + name + "': " + rule);
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the rest is what a user needs.
std::string parser_message(const std::exception &e) {
  std::string m = e.what();
  const size_t close = m.find("] ");
  return m.starts_with("[json.exception.") && close != std::string::npos ? m.substr(close + 2) : m;
}

// The last key wins in nlohmann's objects, so duplicates are caught while parsing: a set of keys per open object.
ordered_json parse_strict(const std::string &text, const std::string &path, const char *what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto track = [&](int, ordered_json::parse_event_t event, ordered_json &parsed) {
    using E = ordered_json::parse_event_t;
    if (event == E::object_start) open_objects.emplace_back();
    if (event == E::object_end) open_objects.pop_back();
    if (event == E::key && !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  ordered_json doc;
  try {
    doc = ordered_json::parse(text, track);
  } catch (const ordered_json::exception &e) {
    refuse(path, std::string(what) + " is not valid JSON: " + parser_message(e));
  }
  if (!duplicate.empty()) refuse(path, std::string(what) + " has the key '" + duplicate + "' twice");
  if (!doc.is_object()) refuse(path, std::string(what) + " is not a JSON object");
  return doc;
}

uint64_t checked_mul(uint64_t a, uint64_t b, bool *overflow) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) *overflow = true;
  return r;
}

std::vector<int64_t> parse_shape(const ordered_json &value, const std::string &path, const std::string &name) {
  if (!value.is_array()) refuse_tensor(path, name, "\"shape\" is not an array");
  if (value.size() > WB_MAX_DIMS)
    refuse_tensor(path, name, std::to_string(value.size()) + " dimensions, at most " + std::to_string(WB_MAX_DIMS));
  std::vector<int64_t> shape;
  for (const ordered_json &d : value) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX))
      refuse_tensor(path, name, "\"shape\" holds " + d.dump() + ", not a non-negative integer");
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

void parse_offsets(const ordered_json &value, const std::string &path, Entry &e) {
  if (!value.is_array() || value.size() != 2 || !value[0].is_number_unsigned() || !value[1].is_number_unsigned())
    refuse_tensor(path, e.name, "\"data_offsets\" is not [begin, end] of two non-negative integers");
  e.begin = value[0].get<uint64_t>();
  e.end = value[1].get<uint64_t>();
  if (e.begin > e.end) refuse_tensor(path, e.name, "\"data_offsets\" begin " + std::to_string(e.begin) +
                                                   " is after end " + std::to_string(e.end));
}

// end - begin must be exactly the bytes of the shape.
void check_size(const std::string &path, const Entry &e, const std::string &dtype) {
  bool overflow = false;
  uint64_t bytes = wb_dtype_size(e.dtype);
  for (int64_t d : e.shape) bytes = checked_mul(bytes, uint64_t(d), &overflow);
  if (overflow) refuse_tensor(path, e.name, "the byte size of its shape overflows 64 bits");
  if (e.end - e.begin != bytes) {
    std::string shape;
    for (int64_t d : e.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    refuse_tensor(path, e.name, "\"data_offsets\" span " + std::to_string(e.end - e.begin) + " bytes, but shape [" +
                                    shape + "] of " + dtype + " needs " + std::to_string(bytes));
  }
}

// A name with a NUL byte would be cut short at it by every C string it passes through, and load as another
// tensor; it is quoted as JSON so that the message shows where the NUL is.
void refuse_nul(const std::string &path, const std::string &what, const std::string &name) {
  if (name.find('\0') != std::string::npos)
    refuse(path, what + " " + ordered_json(name).dump() + " holds a NUL byte (\\u0000), which names cannot carry");
}

Entry parse_entry(const std::string &name, const ordered_json &value, const std::string &path) {
  Entry e;
  e.name = name;
  if (name.empty()) refuse(path, "a tensor has an empty name");
  refuse_nul(path, "the tensor name", name);
  if (name.size() > WB_NAME_MAX)
    refuse_tensor(path, name.substr(0, 40) + "...", "name of " + std::to_string(name.size()) +
                                                        " bytes, at most " + std::to_string(WB_NAME_MAX));
  if (!value.is_object()) refuse_tensor(path, name, "its entry is not an object");
  for (const auto &[key, _] : value.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets") refuse_tensor(path, name, "unknown key '" + key + "'");
  for (const char *key : {"dtype", "shape", "data_offsets"})
    if (!value.contains(key)) refuse_tensor(path, name, std::string("no \"") + key + "\"");
  if (!value["dtype"].is_string()) refuse_tensor(path, name, "\"dtype\" is not a string");
  const std::string dtype = value["dtype"].get<std::string>();
  e.dtype = dtype_from_name(dtype);
  if (e.dtype == 0) refuse_tensor(path, name, "unknown dtype '" + dtype + "' (known: " + known_dtypes() + ")");
  e.shape = parse_shape(value["shape"], path, name);
  parse_offsets(value["data_offsets"], path, e);
  check_size(path, e, dtype);
  return e;
}

std::string parse_metadata(const ordered_json &value, const std::string &path) {
  if (!value.is_object()) refuse(path, "\"__metadata__\" is not an object");
  for (const auto &[key, v] : value.items())
    if (!v.is_string()) refuse(path, "\"__metadata__\" value of '" + key + "' is not a string");
  return value.dump();
}

// Tensors must tile the data from offset 0 without gaps or overlaps, and the data must end with the file.
void check_tiling(const std::vector<Entry> &tensors, uint64_t data_bytes, const std::string &path) {
  uint64_t at = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Entry &e = tensors[k];
    if (e.begin < at)
      refuse_tensor(path, e.name, "its data [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                      ") overlaps tensor '" + tensors[k - 1].name + "'");
    if (e.begin > at)
      refuse_tensor(path, e.name, "its data begins at " + std::to_string(e.begin) + ", leaving a gap after " +
                                      (k == 0 ? std::string("the header (the first tensor must begin at 0)")
                                              : "tensor '" + tensors[k - 1].name + "', which ends at " +
                                                    std::to_string(at)));
    at = e.end;
  }
  if (at != data_bytes)
    refuse(path, "the file has " + std::to_string(data_bytes) + " bytes after the header, but its tensors cover " +
                     std::to_string(at));
}

std::string read_text_file(const std::string &path) {
  FileDescriptor fd = open_or_throw(path, O_RDONLY);
  std::string text(file_size(fd.get(), path), '\0');
  read_exact(fd.get(), text.data(), text.size(), 0, path);
  return text;
}

std::string dir_of(const std::string &path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

Header read_header_at(const std::string &path) {
  FileDescriptor fd = open_or_throw(path, O_RDONLY);
  return read_header(fd.get(), file_size(fd.get(), path), path);
}

// weight_map: tensor name -> shard file name, in the index's folder.
std::map<std::string, std::vector<std::string>> read_index(const std::string &path) {
  const ordered_json doc = parse_strict(read_text_file(path), path, "the index");
  if (!doc.contains("weight_map") || !doc["weight_map"].is_object())
    refuse(path, "the index has no \"weight_map\" object");
  std::map<std::string, std::vector<std::string>> shards;  // sorted: model-00001-of-... comes first
  for (const auto &[name, file] : doc["weight_map"].items()) {
    if (!file.is_string()) refuse(path, "weight_map: tensor '" + name + "' maps to " + file.dump() + ", not a file name");
    const std::string f = file.get<std::string>();
    refuse_nul(path, "weight_map: the tensor name", name);
    refuse_nul(path, "weight_map: the file name", f);
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      refuse(path, "weight_map: tensor '" + name + "' maps to '" + f + "', which is not a file name in the index's folder");
    shards[f].push_back(name);
  }
  if (shards.empty()) refuse(path, "the index's \"weight_map\" is empty");
  return shards;
}

// Every tensor of a shard is in the index under that shard, and every name the index gives it is there.
void check_shard(const std::string &index, const Shard &shard, const std::string &file,
                 const std::vector<std::string> &names) {
  std::set<std::string> expected(names.begin(), names.end());
  for (const Entry &e : shard.header.tensors)
    if (!expected.erase(e.name))
      refuse(index, "tensor '" + e.name + "' is in shard '" + file + "', but the index does not map it there");
  if (!expected.empty())
    refuse(index, "tensor '" + *expected.begin() + "' is mapped to shard '" + file + "', which does not hold it");
}

Checkpoint open_index(const std::string &path) {
  Checkpoint cp{path, {}};
  const std::string dir = dir_of(path);
  for (const auto &[file, names] : read_index(path)) {
    const std::string shard_path = join_path(dir, file);
    cp.shards.push_back({shard_path, read_header_at(shard_path)});
    check_shard(path, cp.shards.back(), file, names);
  }
  return cp;
}

bool is_dir(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

const char *dtype_name(int32_t dtype) {
  for (const DtypeName &d : kDtypes)
    if (d.dtype == dtype) return d.name;
  return nullptr;
}

int32_t dtype_from_name(const std::string &name) {
  for (const DtypeName &d : kDtypes)
    if (name == d.name) return d.dtype;
  return 0;
}

Header parse_header(const std::string &json, uint64_t file_size, const std::string &path) {
  const ordered_json doc = parse_strict(json, path, "the header");
  Header h;
  h.header_bytes = json.size();
  for (const auto &[key, value] : doc.items()) {
    if (key == "__metadata__")
      h.metadata_json = parse_metadata(value, path);
    else
      h.tensors.push_back(parse_entry(key, value, path));
  }
  // Zero-byte tensors share their offset with a neighbour; keeping the header's order among equals keeps them
  // where the writer put them.
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const Entry &a, const Entry &b) { return a.begin < b.begin; });
  check_tiling(h.tensors, file_size - h.data_offset(), path);
  return h;
}

Header read_header(int fd, uint64_t size, const std::string &path) {
  if (size < 8) refuse(path, "the file has " + std::to_string(size) + " bytes, too few for the 8-byte header length");
  unsigned char prefix[8];
  read_exact(fd, prefix, 8, 0, path);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = n << 8 | prefix[k];
  if (n > kMaxHeaderBytes)
    refuse(path, "the header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                     " bytes");
  if (n > size - 8)
    refuse(path, "the header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                     " bytes)");
  std::string json(n, '\0');
  read_exact(fd, json.data(), n, 8, path);
  if (n == 0 || json[0] != '{') refuse(path, "the header does not begin with '{'");
  return parse_header(json, size, path);
}

std::string header_bytes(const std::vector<Entry> &tensors, const std::string &metadata_json) {
  ordered_json doc = ordered_json::object();
  if (!metadata_json.empty()) doc["__metadata__"] = ordered_json::parse(metadata_json);
  for (const Entry &e : tensors) {
    ordered_json entry = ordered_json::object();
    entry["dtype"] = dtype_name(e.dtype);
    entry["shape"] = e.shape;
    entry["data_offsets"] = {e.begin, e.end};
    doc[e.name] = std::move(entry);
  }
  std::string json = doc.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the Rust crate pads with spaces to a multiple of 8
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[k] = char(uint64_t(json.size()) >> (8 * k) & 0xff);
  return out + json;
}

Checkpoint open_checkpoint(const std::string &path) {
  if (is_dir(path)) {
    if (path_exists(join_path(path, kIndexFile))) return open_index(join_path(path, kIndexFile));
    if (path_exists(join_path(path, kSingleFile))) return open_checkpoint(join_path(path, kSingleFile));
    throw std::runtime_error(path + ": neither " + kIndexFile + " nor " + kSingleFile + " is in this folder");
  }
  if (path.ends_with(".json")) return open_index(path);
  return Checkpoint{path, {{path, read_header_at(path)}}};
}

std::string index_json(const std::vector<std::string> &files, const std::vector<std::vector<std::string>> &names,
                       uint64_t total_size) {
  nlohmann::json doc;  // std::map keys: sorted, as HF's json.dumps(sort_keys=True)
  doc["metadata"]["total_size"] = total_size;
  doc["weight_map"] = nlohmann::json::object();
  for (size_t k = 0; k < files.size(); ++k)
    for (const std::string &name : names[k]) doc["weight_map"][name] = files[k];
  return doc.dump(2) + "\n";
}

}  // namespace wbcli::st
