// Copies of flatbuffers vectors out of a verified control message. The verifier checks that a vector's length
// prefix is 4-byte aligned but not that 8-byte elements are 8-byte aligned: a hostile message can misalign
// them, and loading them in place is undefined behaviour (found by fuzz-broker-messages). So they are copied
// byte-wise, which any alignment allows.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <string>
#include <vector>

namespace wb::broker {

template <typename T>
std::vector<T> items(const flatbuffers::Vector<T> *v) {
  static_assert(flatbuffers::is_scalar<T>::value, "a vector of scalars");
  if (v == nullptr || v->size() == 0) return {};
  std::vector<T> out(v->size());
  memcpy(out.data(), v->Data(), out.size() * sizeof(T));  // flatbuffers and every supported host: little-endian
  return out;
}

inline std::string text(const flatbuffers::String *s) { return s == nullptr ? std::string() : s->str(); }

}  // namespace wb::broker
