// Byte copies into and out of an array of atomic words, for data a reader copies while a writer may be
// rewriting it (version records' metadata and GPU event handles under their seqlocks): plain memcpy there is a data race.
// Release stores and acquire loads keep the seqlock's version accesses on their side of the copy (the
// version's reset before every store, its re-check after every load) without fences, which ThreadSanitizer
// does not model; on x86 they are plain moves.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

namespace wb {

// Stores size bytes of src into words (which must hold them), the last word zero-padded.
template <typename Word>
void store_bytes(std::atomic<Word> *words, const void *src, size_t size) {
  const uint8_t *from = static_cast<const uint8_t *>(src);
  for (size_t at = 0; at < size; at += sizeof(Word)) {
    Word word = 0;
    memcpy(&word, from + at, std::min(sizeof(word), size - at));
    words[at / sizeof(word)].store(word, std::memory_order_release);
  }
}

// Loads size bytes out of words into dst.
template <typename Word>
void load_bytes(void *dst, const std::atomic<Word> *words, size_t size) {
  uint8_t *to = static_cast<uint8_t *>(dst);
  for (size_t at = 0; at < size; at += sizeof(Word)) {
    Word word = words[at / sizeof(word)].load(std::memory_order_acquire);
    memcpy(to + at, &word, std::min(sizeof(word), size - at));
  }
}

}  // namespace wb
