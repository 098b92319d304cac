// Bringing a file on disk to new content while writing as little as possible.
//
// A file that does not exist, or whose size or header bytes differ, is written whole to FILE.wbtmp and renamed
// over FILE (atomic). A file with the same size and header is compared with the new content block by block,
// and only the blocks that differ are written, through the redo journal of journal.hpp, so that a crash never
// leaves a file that is neither the old nor the new content once the journal is replayed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "progress.hpp"

namespace wbcli {

// The new content: pieces laid end to end. The first is the header, which must match for an in-place sync.
struct Piece {
  const void *data;
  uint64_t size;
};

struct SyncResult {
  const char *action;  // "created", "rewritten" (size or header differ), "synced" (blocks changed), "unchanged"
  uint64_t bytes = 0;      // the file's size
  uint64_t compared = 0;   // bytes compared with the file's old content
  uint64_t written = 0;    // bytes written into the file
  uint64_t journal = 0;    // bytes written into its journal
};

inline constexpr uint64_t kDefaultBlockBytes = 4096;

SyncResult sync_file(const std::string &path, const std::vector<Piece> &content, uint64_t block_bytes,
                     Progress &progress);

// Writes text to path atomically (temporary file, fsync, rename): for small files such as the index.
void write_file_atomically(const std::string &path, const std::string &text);

}  // namespace wbcli
