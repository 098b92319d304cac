#include "file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace wbcli {
namespace {

[[noreturn]] void fail(const std::string &what, const std::string &path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

const char *file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

[[noreturn]] void refuse_type(const std::string &path, mode_t mode) {
  throw std::runtime_error(path + " is " + file_type(mode) + ", not a regular file: weightbus reads and writes "
                                  "checkpoints only in regular files");
}

std::string parent_of(const std::string &path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

FileDescriptor &FileDescriptor::operator=(FileDescriptor &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

// O_NONBLOCK makes opening a FIFO return at once instead of waiting forever for its other end; the type check
// then refuses it, and every other file that is not regular (a device such as /dev/zero has no end). Symbolic
// links are followed: a Hugging Face cache's snapshot folder is made of links to its blobs.
FileDescriptor open_or_throw(const std::string &path, int flags, unsigned mode) {
  FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC | O_NONBLOCK, mode));
  struct stat st {};
  if (fd.get() < 0 && errno == ENXIO && ::stat(path.c_str(), &st) == 0) refuse_type(path, st.st_mode);
  if (fd.get() < 0) fail("open", path);
  if (fstat(fd.get(), &st) != 0) fail("stat", path);
  if (!S_ISREG(st.st_mode)) refuse_type(path, st.st_mode);
  if (fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) != 0) fail("fcntl", path);
  return fd;
}

uint64_t file_size(int fd, const std::string &path) {
  struct stat st {};
  if (fstat(fd, &st) != 0) fail("stat", path);
  return uint64_t(st.st_size);
}

void read_exact(int fd, void *buf, uint64_t n, uint64_t offset, const std::string &path) {
  auto *p = static_cast<char *>(buf);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("read", path);
    if (got == 0) throw std::runtime_error("read " + path + ": the file ends early (it changed while being read?)");
    p += got;
    n -= uint64_t(got);
    offset += uint64_t(got);
  }
}

void write_exact(int fd, const void *buf, uint64_t n, uint64_t offset, const std::string &path) {
  const auto *p = static_cast<const char *>(buf);
  while (n > 0) {
    const ssize_t put = ::pwrite(fd, p, n, off_t(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) fail("write", path);
    p += put;
    n -= uint64_t(put);
    offset += uint64_t(put);
  }
}

void sync_or_throw(int fd, const std::string &path) {
  if (::fsync(fd) != 0) fail("fsync", path);
}

void sync_parent_dir(const std::string &path) {
  const std::string dir = parent_of(path);
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail("open", dir);
  sync_or_throw(fd.get(), dir);
}

void rename_or_throw(const std::string &from, const std::string &to) {
  if (::rename(from.c_str(), to.c_str()) != 0) fail("rename " + from + " to", to);
}

void remove_if_exists(const std::string &path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail("remove", path);
}

bool path_exists(const std::string &path) { return ::access(path.c_str(), F_OK) == 0; }

std::string join_path(const std::string &dir, const std::string &file) {
  return dir.empty() || dir.ends_with('/') ? dir + file : dir + "/" + file;
}

}  // namespace wbcli
