// libFuzzer harness: the segment header check every client runs on attach (shm::validate_header), on a
// mapping as large as the input's header claims (up to 8 MiB), so that consistent headers are reached.
// Beyond what ASan and UBSan catch: a refusal is WB_E_ABI_MISMATCH or WB_E_PROTOCOL with a message, and an
// accepted header lays every table inside the mapping (touched here at each table's last byte).
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "error.hpp"
#include "layout.hpp"

namespace shm = wb::shm;

namespace {

constexpr uint64_t kMaxMapping = 8u << 20;

[[noreturn]] void broken(const char *what) {
  fprintf(stderr, "fuzz-segment-header: %s\n", what);
  abort();
}

// The size of the mapping a client would have: the header's claim where there is one and it is sane.
uint64_t mapping_size(const uint8_t *data, size_t size) {
  uint64_t claimed = 0;
  if (size < sizeof(shm::Header)) return size;
  memcpy(&claimed, data + offsetof(shm::Header, segment_size), sizeof(claimed));
  return claimed >= size && claimed <= kMaxMapping ? claimed : size;
}

template <typename T>
void touch_last_byte(const T &entry, uint64_t stride = sizeof(T)) {
  volatile const char *last = reinterpret_cast<const char *>(&entry) + stride - 1;
  (void)*last;
}

void touch_every_table(const shm::Segment &seg) {
  const shm::Capacities &caps = seg.caps();
  touch_last_byte(seg.topic(caps.max_topics - 1));
  touch_last_byte(seg.tensor(caps.max_tensors - 1));
  touch_last_byte(seg.allocation(caps.max_allocations - 1));
  touch_last_byte(seg.leases(caps.max_clients - 1)[caps.leases_per_client - 1]);
  touch_last_byte(seg.record(caps.max_topics - 1, caps.ring_slots - 1));
  touch_last_byte(seg.rank(caps.max_ranks - 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t mapped = mapping_size(data, size);
  void *base = nullptr;
  if (posix_memalign(&base, 64, mapped == 0 ? 1 : mapped) != 0) broken("out of memory");
  memset(base, 0, mapped);
  memcpy(base, data, size);
  wb::clear_error();
  int rc = shm::validate_header(base, mapped);
  if (rc == WB_OK) touch_every_table(shm::Segment(base));
  if (rc != WB_OK && rc != WB_E_ABI_MISMATCH && rc != WB_E_PROTOCOL) broken("an unexpected error code");
  if (rc != WB_OK && wb_last_error()[0] == '\0') broken("a refusal without a message");
  free(base);
  return 0;
}
