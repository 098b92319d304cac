// A publisher whose process is gone writes no more GPU words (layout.hpp: Segment::gpu_word), so the broker
// writes them: every word of its topic below the latest version gets it, and readers' streams waiting on one
// go on. Only for a dead publisher (here killed, and one a restarted broker reaps): a live one that closes its
// topic still has its streams' writes coming, so its words stay as they are. No GPU is needed: the words live
// in the segment, and these publishers publish host tensors.
#include <sys/mman.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace shm = wb::shm;

namespace {

fx_broker *broker_of(void **state) { return static_cast<fx_broker *>(*state); }

// The doomed publisher of fixture.h: three versions, then half of a fourth, then it waits to be killed.
pid_t start_doomed(fx_broker *b, uint32_t *half_written) {
  static fx_doomed_publisher args;
  args = fx_doomed_publisher{b, 2, 2, 16, 3, half_written};
  pid_t pid = fx_spawn(fx_doomed_publisher_main, &args);
  for (int i = 0; i < 4000 && __atomic_load_n(half_written, __ATOMIC_ACQUIRE) == 0; ++i) {  // 20 s: sanitizers
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  assert_int_equal(__atomic_load_n(half_written, __ATOMIC_ACQUIRE), 1);
  return pid;
}

// Waits at most 20 s for every word of topic 0 to reach v; false if one does not.
bool words_reach(const shm::Segment &seg, uint64_t v) {
  for (int i = 0; i < 2000; ++i) {
    bool all = true;
    for (uint32_t slot = 0; slot < seg.caps().ring_slots; ++slot) all = all && seg.gpu_word(0, slot).load() == v;
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void words_of_a_killed_publisher_reach_its_latest_version(void **state) {
  fx_broker *b = broker_of(state);
  auto *half_written = static_cast<uint32_t *>(fx_shared_alloc(sizeof(uint32_t)));
  pid_t pid = start_doomed(b, half_written);
  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(b->name, &base, &size);
  assert_int_equal(seg.gpu_word(0, 1).load(), 0);  // host versions write no word
  kill(pid, SIGKILL);
  assert_int_equal(fx_wait_child(pid, 20000), 128 + SIGKILL);
  assert_true(words_reach(seg, 3));  // the half-written fourth is no version: nobody waits for it
  munmap(base, size);
}

void a_live_publisher_closing_its_topic_leaves_its_words(void **state) {
  fx_broker *b = broker_of(state);
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(b, "live", &c));
  FX_OK(fx_create_topic(c, "model", 2, 2, 16, &t));
  FX_OK(fx_publish(t, 3, 16, nullptr));
  FX_OK(fx_publish(t, 3, 16, nullptr));
  FX_OK(wb_topic_close(t));
  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(b->name, &base, &size);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // time for a wrong write to show
  for (uint32_t slot = 0; slot < seg.caps().ring_slots; ++slot) assert_int_equal(seg.gpu_word(0, slot).load(), 0);
  FX_OK(wb_detach(c));
  munmap(base, size);
}

void a_restarted_broker_settles_the_words_of_a_publisher_that_died_meanwhile(void **state) {
  fx_broker *b = broker_of(state);
  auto *half_written = static_cast<uint32_t *>(fx_shared_alloc(sizeof(uint32_t)));
  pid_t pid = start_doomed(b, half_written);
  fx_broker_kill9(b);  // the broker first: nobody sees the publisher die
  kill(pid, SIGKILL);
  assert_int_equal(fx_wait_child(pid, 20000), 128 + SIGKILL);
  assert_int_equal(fx_broker_restart(b), 0);
  void *base = nullptr;
  size_t size = 0;
  shm::Segment seg = raw::map_segment(b->name, &base, &size);
  assert_true(words_reach(seg, 3));
  munmap(base, size);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(words_of_a_killed_publisher_reach_its_latest_version, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_live_publisher_closing_its_topic_leaves_its_words, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_restarted_broker_settles_the_words_of_a_publisher_that_died_meanwhile, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
