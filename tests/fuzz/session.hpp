// The input format of fuzz-broker-messages, shared with make-corpus: a sequence of records, each a control
// message from one of two clients with the descriptors it carries.
//   byte 0      bit 0: the client (0 or 1); bits 1-3: descriptors (0..4, more counts as 4);
//               bit 4: the descriptors are /dev/null instead of pipe write ends
//   bytes 1-2   the message's length, little-endian
//   then        the message (a flatbuffer, or anything)
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wb::fuzz {

inline constexpr int kClients = 2;

struct Record {
  int client = 0;
  int fds = 0;
  bool dev_null = false;
  const uint8_t *data = nullptr;
  size_t size = 0;
};

// Splits input into records; a truncated last record is cut to what is there.
inline std::vector<Record> parse_records(const uint8_t *input, size_t size) {
  std::vector<Record> records;
  size_t at = 0;
  while (at + 3 <= size) {
    Record r;
    uint8_t flags = input[at];
    r.client = flags & 1;
    r.fds = (flags >> 1) & 7;
    if (r.fds > 4) r.fds = 4;
    r.dev_null = (flags >> 4) & 1;
    size_t length = size_t(input[at + 1]) | size_t(input[at + 2]) << 8;
    at += 3;
    r.data = input + at;
    r.size = length < size - at ? length : size - at;
    at += r.size;
    records.push_back(r);
  }
  return records;
}

// Appends one record to out.
inline void append_record(std::vector<uint8_t> *out, int client, int fds, bool dev_null, const uint8_t *data,
                          size_t size) {
  out->push_back(uint8_t(client | fds << 1 | (dev_null ? 1 << 4 : 0)));
  out->push_back(uint8_t(size & 0xff));
  out->push_back(uint8_t(size >> 8));
  out->insert(out->end(), data, data + size);
}

}  // namespace wb::fuzz
