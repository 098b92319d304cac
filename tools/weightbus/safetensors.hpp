// The safetensors format: reading and strictly validating headers (single files and sharded indexes), and
// writing headers the way the reference writer (the Rust `safetensors` crate) does, so that a checkpoint of a
// loaded file reproduces it byte for byte.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...}
// padded with spaces, then the tensors' bytes; offsets count from the end of the header.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace wbcli::st {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the Rust crate's limit
inline constexpr const char *kSingleFile = "model.safetensors";
inline constexpr const char *kIndexFile = "model.safetensors.index.json";

// A file or index that breaks a rule of the format. what() names the file, the tensor and the rule.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Entry {
  std::string name;
  int32_t dtype = 0;  // WB_DTYPE_*
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data_offsets, from the end of the header
  uint64_t end = 0;
};

// The metadata is kept as the JSON text of its object, so that writing it back reproduces it.
struct Header {
  std::vector<Entry> tensors;  // in the order of their bytes
  std::optional<std::string> metadata_json;  // the "__metadata__" object, compact JSON; absent if the file has none
  uint64_t header_bytes = 0;   // N
  uint64_t data_offset() const { return 8 + header_bytes; }
  uint64_t data_bytes() const { return tensors.empty() ? 0 : tensors.back().end; }
};

// The safetensors dtype name of a WB_DTYPE_* ("BF16"), or nullptr; and the reverse (0 if unknown).
const char *dtype_name(int32_t dtype);
int32_t dtype_from_name(const std::string &name);

// Reads and validates the header of an open file of file_size bytes. Throws FormatError.
Header read_header(int fd, uint64_t file_size, const std::string &path);

// Parses a header from its JSON text (what follows the 8 length bytes). Throws FormatError naming path.
Header parse_header(const std::string &json, uint64_t file_size, const std::string &path);

// The header's bytes, length prefix and padding included, for tensors laid out back to back in this order.
// metadata_json must be a JSON object of strings (or empty for none).
std::string header_bytes(const std::vector<Entry> &tensors, const std::string &metadata_json);

// What a checkpoint path names: one file, or the shards of an index, each with its tensors.
struct Shard {
  std::string path;
  Header header;
};
struct Checkpoint {
  std::string path;  // the file or index given
  std::vector<Shard> shards;
};

// Resolves PATH (a .safetensors file, an index .json, or a folder holding model.safetensors.index.json or
// model.safetensors), then reads and validates every header; an index must name each tensor of its shards
// exactly once. Throws FormatError or std::runtime_error (a file that cannot be read).
Checkpoint open_checkpoint(const std::string &path);

// The index file's text for shards named files[k] holding names[k]: HF's format (sorted keys, indent 2).
std::string index_json(const std::vector<std::string> &files, const std::vector<std::vector<std::string>> &names,
                       uint64_t total_size);

}  // namespace wbcli::st
