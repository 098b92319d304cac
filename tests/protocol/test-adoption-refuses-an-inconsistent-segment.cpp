// A restarted broker checks the tables of the segment it would adopt before it builds on them: a segment a
// crash cannot produce (a tensor list leading out of the table, counts past the capacities) is refused with
// a message saying what to remove, and left where it is; the broker never follows it out of bounds.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <string>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace {

// Starts a broker, gives it a topic of two tensors, and kills it: its segment stays for the next one.
void leave_a_segment(fx_broker *b) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, "setup", &c));
  FX_OK(fx_create_topic(c, "model", 2, 2, 64, &t));
  FX_OK(wb_detach(c));
  fx_broker_kill9(b);
}

// Runs weightbusd on b's name and socket; returns its exit status with its stderr in log.
int restart(const fx_broker *b, const std::string &log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    execl(fx_broker_path(), fx_broker_path(), "--foreground", "--socket", b->socket_path, "--name", b->name,
          static_cast<char *>(nullptr));
    _exit(127);
  }
  return fx_wait_child(pid, 10000);
}

bool log_says(const std::string &log, const char *text) {
  char buf[4096] = {0};
  FILE *f = fopen(log.c_str(), "r");
  size_t n = f != nullptr ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
  if (f != nullptr) fclose(f);
  buf[n] = '\0';
  if (strstr(buf, text) == nullptr) fprintf(stderr, "broker log lacks \"%s\":\n%s\n", text, buf);
  return strstr(buf, text) != nullptr;
}

void a_tensor_list_out_of_the_table_is_refused(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  leave_a_segment(b);
  void *base;
  size_t size;
  wb::shm::Segment seg = raw::map_segment(b->name, &base, &size);
  seg.topic(0).first_tensor = 1000000;
  munmap(base, size);
  std::string log = std::string(b->dir) + "/restart.log";
  assert_int_equal(restart(b, log), 1);
  assert_true(log_says(log, "broken tensor list"));
  assert_true(log_says(log, "to start afresh"));
}

void counts_past_the_capacities_are_refused(void **state) {
  auto *b = static_cast<fx_broker *>(*state);
  leave_a_segment(b);
  void *base;
  size_t size;
  wb::shm::Segment seg = raw::map_segment(b->name, &base, &size);
  seg.header().topic_count.store(seg.caps().max_topics + 1);
  munmap(base, size);
  std::string log = std::string(b->dir) + "/restart.log";
  assert_int_equal(restart(b, log), 1);
  assert_true(log_says(log, "table counts exceed its capacities"));
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_tensor_list_out_of_the_table_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(counts_past_the_capacities_are_refused, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
