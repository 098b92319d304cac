// The redo journal that makes an in-place block sync crash-safe (docs/checkpoint.md).
//
// Before changing blocks of FILE in place, their new bytes go to FILE.wbjournal, which is made durable; only
// then are they written into FILE, which is made durable, and the journal removed. A complete journal can be
// applied again at any time, so whatever point a crash stops at, the next `checkpoint` or `load` finishes the
// sync (a complete journal) or forgets it (an incomplete one: FILE was not touched yet).
//
// Format, integers little-endian u64:
//   "WBJRNL01"  target file size
//   entries:    offset  length  length bytes
//   "WBJEND01"  entry count  checksum (FNV-1a 64 of every byte before this trailer)
#pragma once

#include <cstdint>
#include <string>

#include "file_io.hpp"

namespace wbcli {

std::string journal_path(const std::string &target);

// Writes a journal for a target file of target_size bytes. Entries are buffered and written in large pieces.
class JournalWriter {
 public:
  JournalWriter(const std::string &target, uint64_t target_size);
  void add(uint64_t offset, const void *data, uint64_t length);
  uint64_t entries() const { return entries_; }
  // Writes the trailer and makes the journal durable. Returns the journal's size in bytes.
  uint64_t commit();

 private:
  void put(const void *data, uint64_t length);
  void flush();
  std::string path_;
  FileDescriptor fd_;
  std::string buffer_;
  uint64_t written_ = 0;  // bytes of the file before buffer_
  uint64_t entries_ = 0;
  uint64_t hash_;
};

enum class Replay { kNone, kApplied, kDiscarded };

// Finishes or forgets the journal of target, if there is one: a complete journal is applied to target (made
// durable) and removed; an incomplete or damaged one is removed. Throws when a complete journal does not fit
// target (another size): that needs a person, not a guess.
Replay replay_journal(const std::string &target);

}  // namespace wbcli
