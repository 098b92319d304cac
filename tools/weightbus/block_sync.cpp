#include "block_sync.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "file_io.hpp"
#include "journal.hpp"

namespace wbcli {
namespace {

constexpr uint64_t kChunkBytes = 1 << 20;  // read and compared per system call; a multiple of the block size

// Random access to the new content: copies [offset, offset + n) of the pieces laid end to end into out.
class Content {
 public:
  explicit Content(const std::vector<Piece> &pieces) : pieces_(pieces) {
    for (const Piece &p : pieces) {
      starts_.push_back(size_);
      size_ += p.size;
    }
  }
  uint64_t size() const { return size_; }

  void copy(uint64_t offset, uint64_t n, char *out) const {
    size_t k = size_t(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin()) - 1;
    while (n > 0) {
      const uint64_t within = offset - starts_[k];
      const uint64_t take = std::min(n, pieces_[k].size - within);
      std::memcpy(out, static_cast<const char *>(pieces_[k].data) + within, take);
      out += take;
      offset += take;
      n -= take;
      ++k;
    }
  }

 private:
  const std::vector<Piece> &pieces_;
  std::vector<uint64_t> starts_;
  uint64_t size_ = 0;
};

bool same_header(int fd, uint64_t size, const Content &content, const Piece &header, const std::string &path) {
  if (size != content.size() || size < header.size) return false;
  std::string old(header.size, '\0');
  read_exact(fd, old.data(), header.size, 0, path);
  return std::memcmp(old.data(), header.data, header.size) == 0;
}

SyncResult write_whole(const std::string &path, const std::vector<Piece> &content, const char *action,
                       Progress &progress) {
  const std::string tmp = path + ".wbtmp";
  SyncResult r{action};
  {
    FileDescriptor fd = open_or_throw(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    for (const Piece &p : content) {
      for (uint64_t done = 0; done < p.size;) {
        const uint64_t n = std::min(p.size - done, kChunkBytes);
        write_exact(fd.get(), static_cast<const char *>(p.data) + done, n, r.bytes, tmp);
        done += n;
        r.bytes += n;
        progress.add(n);
      }
    }
    sync_or_throw(fd.get(), tmp);
  }
  rename_or_throw(tmp, path);
  sync_parent_dir(path);
  r.written = r.bytes;
  return r;
}

// Compares the data after the header block by block; the blocks that differ go to the journal, which is then
// committed and applied. Blocks are aligned to file offsets, so a block may start inside the header; only
// bytes from the header's end are compared (the header is equal).
SyncResult sync_blocks(const std::string &path, int fd, const Content &content, uint64_t header_bytes,
                       uint64_t block_bytes, Progress &progress) {
  SyncResult r{"unchanged"};
  r.bytes = content.size();
  JournalWriter journal(path, r.bytes);
  const uint64_t chunk = std::max(block_bytes, kChunkBytes / block_bytes * block_bytes);
  std::vector<char> old_bytes(chunk), new_bytes(chunk);
  for (uint64_t at = header_bytes / block_bytes * block_bytes; at < r.bytes; at += chunk) {
    const uint64_t begin = std::max(at, header_bytes), end = std::min(at + chunk, r.bytes);
    read_exact(fd, old_bytes.data(), end - begin, begin, path);
    content.copy(begin, end - begin, new_bytes.data());
    for (uint64_t b = begin; b < end;) {
      const uint64_t block_end = std::min(end, (b / block_bytes + 1) * block_bytes);
      const char *fresh = new_bytes.data() + (b - begin);
      if (std::memcmp(old_bytes.data() + (b - begin), fresh, block_end - b) != 0) {
        journal.add(b, fresh, block_end - b);
        r.written += block_end - b;
      }
      b = block_end;
    }
    r.compared += end - begin;
    progress.add(end - begin);
  }
  if (journal.entries() == 0) {
    remove_if_exists(journal_path(path));
    return r;
  }
  r.journal = journal.commit();
  replay_journal(path);  // the same code that finishes a sync a crash interrupted
  r.action = "synced";
  return r;
}

}  // namespace

SyncResult sync_file(const std::string &path, const std::vector<Piece> &pieces, uint64_t block_bytes,
                     Progress &progress) {
  const Content content(pieces);
  if (!path_exists(path)) return write_whole(path, pieces, "created", progress);
  FileDescriptor fd = open_or_throw(path, O_RDONLY);
  const uint64_t size = file_size(fd.get(), path);
  if (!same_header(fd.get(), size, content, pieces.front(), path))
    return write_whole(path, pieces, "rewritten", progress);
  progress.add(pieces.front().size);
  return sync_blocks(path, fd.get(), content, pieces.front().size, block_bytes, progress);
}

void write_file_atomically(const std::string &path, const std::string &text) {
  Progress silent("", 0, false);
  write_whole(path, {{text.data(), text.size()}}, "", silent);
}

}  // namespace wbcli
