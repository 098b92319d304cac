// The library remembers its pid (libclient/process_id.hpp: getpid() is a costly system call in sandboxes, and
// CUDA lookups ask it per tensor); a forked child must not inherit the parent's.
#include <sys/wait.h>
#include <unistd.h>

#include "process_id.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

void remembered_pid_is_this_process(void **) {
  assert_int_equal(wb::process_id(), getpid());
  assert_int_equal(wb::process_id(), getpid());
}

void forked_child_sees_its_own_pid(void **) {
  const uint32_t parent = wb::process_id();
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) _exit(wb::process_id() == uint32_t(getpid()) && wb::process_id() != parent ? 0 : 1);
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(wb::process_id(), parent);
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test(remembered_pid_is_this_process),
      cmocka_unit_test(forked_child_sees_its_own_pid),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
