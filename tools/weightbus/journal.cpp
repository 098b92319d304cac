#include "journal.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace wbcli {
namespace {

constexpr char kHeadMagic[8] = {'W', 'B', 'J', 'R', 'N', 'L', '0', '1'};
constexpr char kTailMagic[8] = {'W', 'B', 'J', 'E', 'N', 'D', '0', '1'};
constexpr uint64_t kHeadBytes = 16;
constexpr uint64_t kTailBytes = 24;
constexpr uint64_t kEntryHeadBytes = 16;
constexpr uint64_t kFlushBytes = 1 << 20;
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t fnv1a(uint64_t hash, const void *data, uint64_t n) {
  const auto *p = static_cast<const unsigned char *>(data);
  for (uint64_t k = 0; k < n; ++k) hash = (hash ^ p[k]) * kFnvPrime;
  return hash;
}

void put_u64(unsigned char *out, uint64_t v) {
  for (int k = 0; k < 8; ++k) out[k] = static_cast<unsigned char>(v >> (8 * k));
}

uint64_t get_u64(const unsigned char *in) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = v << 8 | in[k];
  return v;
}

// Walks a journal's entries in order, checking the framing and the checksum; when apply_fd >= 0 it also writes
// each entry into it (only ever on a journal that passed a walk without it). False: incomplete or damaged.
class Walker {
 public:
  Walker(int fd, uint64_t size, const std::string &path) : fd_(fd), size_(size), path_(path) {}

  bool walk(int apply_fd, const std::string &target) {
    if (size_ < kHeadBytes + kTailBytes) return false;
    unsigned char head[kHeadBytes];
    read(head, kHeadBytes);
    if (std::memcmp(head, kHeadMagic, 8) != 0) return false;
    target_size = get_u64(head + 8);
    uint64_t count = 0;
    while (pos_ + kTailBytes < size_) {
      if (!entry(apply_fd, target)) return false;
      ++count;
    }
    if (pos_ + kTailBytes != size_) return false;
    const uint64_t hash = hash_;
    unsigned char tail[kTailBytes];
    read(tail, kTailBytes);
    return std::memcmp(tail, kTailMagic, 8) == 0 && get_u64(tail + 8) == count && get_u64(tail + 16) == hash;
  }

  uint64_t target_size = 0;

 private:
  bool entry(int apply_fd, const std::string &target) {
    if (pos_ + kEntryHeadBytes + kTailBytes > size_) return false;
    unsigned char head[kEntryHeadBytes];
    read(head, kEntryHeadBytes);
    const uint64_t offset = get_u64(head), length = get_u64(head + 8);
    if (length > size_ - kTailBytes - pos_ || offset > target_size || length > target_size - offset) return false;
    for (uint64_t done = 0; done < length;) {
      const uint64_t n = std::min<uint64_t>(length - done, kFlushBytes);
      buffer_.resize(n);
      read(buffer_.data(), n);
      if (apply_fd >= 0) write_exact(apply_fd, buffer_.data(), n, offset + done, target);
      done += n;
    }
    return true;
  }

  void read(void *out, uint64_t n) {
    read_exact(fd_, out, n, pos_, path_);
    hash_ = fnv1a(hash_, out, n);
    pos_ += n;
  }

  int fd_;
  uint64_t size_;
  const std::string &path_;
  uint64_t pos_ = 0;
  uint64_t hash_ = kFnvOffset;
  std::vector<unsigned char> buffer_;
};

}  // namespace

std::string journal_path(const std::string &target) { return target + ".wbjournal"; }

JournalWriter::JournalWriter(const std::string &target, uint64_t target_size)
    : path_(journal_path(target)), fd_(open_or_throw(path_, O_WRONLY | O_CREAT | O_TRUNC)), hash_(kFnvOffset) {
  unsigned char head[kHeadBytes];
  std::memcpy(head, kHeadMagic, 8);
  put_u64(head + 8, target_size);
  put(head, kHeadBytes);
}

void JournalWriter::put(const void *data, uint64_t length) {
  hash_ = fnv1a(hash_, data, length);
  buffer_.append(static_cast<const char *>(data), length);
  if (buffer_.size() >= kFlushBytes) flush();
}

void JournalWriter::flush() {
  write_exact(fd_.get(), buffer_.data(), buffer_.size(), written_, path_);
  written_ += buffer_.size();
  buffer_.clear();
}

void JournalWriter::add(uint64_t offset, const void *data, uint64_t length) {
  unsigned char head[kEntryHeadBytes];
  put_u64(head, offset);
  put_u64(head + 8, length);
  put(head, kEntryHeadBytes);
  put(data, length);
  ++entries_;
}

uint64_t JournalWriter::commit() {
  unsigned char tail[kTailBytes];
  std::memcpy(tail, kTailMagic, 8);
  put_u64(tail + 8, entries_);
  put_u64(tail + 16, hash_);
  buffer_.append(reinterpret_cast<const char *>(tail), kTailBytes);  // not hashed: it holds the hash
  flush();
  sync_or_throw(fd_.get(), path_);
  sync_parent_dir(path_);
  return written_;
}

Replay replay_journal(const std::string &target) {
  const std::string path = journal_path(target);
  if (!path_exists(path)) return Replay::kNone;
  FileDescriptor journal = open_or_throw(path, O_RDONLY);
  const uint64_t size = file_size(journal.get(), path);
  Walker check(journal.get(), size, path);
  if (!check.walk(-1, target)) {
    remove_if_exists(path);
    sync_parent_dir(path);
    return Replay::kDiscarded;
  }
  FileDescriptor file = open_or_throw(target, O_RDWR);
  const uint64_t target_size = file_size(file.get(), target);
  if (target_size != check.target_size)
    throw std::runtime_error(path + " is a complete journal for a file of " + std::to_string(check.target_size) +
                             " bytes, but " + target + " has " + std::to_string(target_size) +
                             "; move one of them away");
  Walker apply(journal.get(), size, path);
  apply.walk(file.get(), target);
  sync_or_throw(file.get(), target);
  remove_if_exists(path);
  sync_parent_dir(path);
  return Replay::kApplied;
}

}  // namespace wbcli
