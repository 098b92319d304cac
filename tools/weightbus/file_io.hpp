// File system calls that throw std::runtime_error naming the file and errno's text, so that the commands
// that read and write checkpoints have no error plumbing of their own.
#pragma once

#include <cstdint>
#include <string>

namespace wbcli {

// Owns a file descriptor.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  FileDescriptor(FileDescriptor &&other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileDescriptor &operator=(FileDescriptor &&other) noexcept;
  FileDescriptor(const FileDescriptor &) = delete;
  FileDescriptor &operator=(const FileDescriptor &) = delete;
  ~FileDescriptor();
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens a regular file; anything else (a FIFO, a device, a socket, a directory) is refused without blocking.
FileDescriptor open_or_throw(const std::string &path, int flags, unsigned mode = 0644);
uint64_t file_size(int fd, const std::string &path);
// Reads exactly n bytes at offset; a file shorter than that is an error.
void read_exact(int fd, void *buf, uint64_t n, uint64_t offset, const std::string &path);
void write_exact(int fd, const void *buf, uint64_t n, uint64_t offset, const std::string &path);
void sync_or_throw(int fd, const std::string &path);
// fsync of the folder holding path, so that a rename or unlink in it is durable.
void sync_parent_dir(const std::string &path);
void rename_or_throw(const std::string &from, const std::string &to);
// Removes path if it exists.
void remove_if_exists(const std::string &path);
bool path_exists(const std::string &path);
// "dir/file", without doubling a slash.
std::string join_path(const std::string &dir, const std::string &file);

}  // namespace wbcli
