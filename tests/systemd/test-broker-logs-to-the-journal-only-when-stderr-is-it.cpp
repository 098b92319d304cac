// The broker's log goes to the journal only when its stderr is the stream $JOURNAL_STREAM names ("DEVICE:INODE",
// as systemd sets it for a service), decided without systemd: true for that file's device and inode, false for
// another file, a missing variable or text of another form; and a stderr line is written whole, however long
// (no fixed line buffer).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "log.hpp"

namespace {

int failures = 0;

void expect(bool ok, const char *what) {
  if (ok) return;
  std::fprintf(stdout, "FAIL: %s\n", what);
  ++failures;
}

std::string device_inode(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

int temp_file(char *path) {
  const int fd = mkstemp(path);
  if (fd < 0) std::perror("mkstemp"), std::exit(1);
  unlink(path);
  return fd;
}

std::string read_all(int fd) {
  std::string text;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = pread(fd, buf, sizeof buf, at);
    if (n <= 0) return text;
    text.append(buf, size_t(n));
    at += n;
  }
}

}  // namespace

int main() {
  using wb::broker::stream_is_journal;
  char a_path[] = "/tmp/wb-journal-a-XXXXXX", b_path[] = "/tmp/wb-journal-b-XXXXXX";
  const int a = temp_file(a_path), b = temp_file(b_path);
  const std::string a_id = device_inode(a);

  expect(stream_is_journal(a_id.c_str(), a), "the stream JOURNAL_STREAM names is the journal");
  expect(!stream_is_journal(a_id.c_str(), b), "another file is not");
  expect(!stream_is_journal(nullptr, a), "no JOURNAL_STREAM: not the journal");
  for (const char *bad : {"", ":", "12", "12:", ":34", "12:34x", "x:y", "-1:-1", "12 34"})
    expect(!stream_is_journal(bad, a), (std::string("malformed JOURNAL_STREAM '") + bad + "'").c_str());
  const std::string with_tail = a_id + ":1";
  expect(!stream_is_journal(with_tail.c_str(), a), "DEVICE:INODE followed by more is refused");

  // stderr becomes file a: JOURNAL_STREAM naming it turns the journal on, naming b (a child that inherited
  // the variable and writes elsewhere) leaves it off.
  fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  dup2(a, STDERR_FILENO);
  setenv("JOURNAL_STREAM", device_inode(b).c_str(), 1);
  expect(!wb::broker::log_to_journal_if_stderr_is_it(), "stderr is not the stream named: stderr lines");
  const std::string long_text(5000, 'x');
  wb::broker::log(wb::broker::LogLevel::kWarn, "long %s end", long_text.c_str());
  setenv("JOURNAL_STREAM", a_id.c_str(), 1);
  expect(wb::broker::log_to_journal_if_stderr_is_it(), "stderr is the stream named: the journal");
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  const std::string text = read_all(a);
  expect(text.find(" weightbusd warn: long " + long_text + " end\n") != std::string::npos,
         "a 5000-byte line is written whole, with its time and level");
  std::printf("%s\n", failures == 0 ? "ok" : "failed");
  return failures == 0 ? 0 : 1;
}
