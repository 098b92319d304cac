// A node of a std::set holding value, made ahead: inserting it later cannot fail. For the handles the library
// records once the broker or the segment has acted for them.
#pragma once

#include <set>

namespace wb {

template <typename T>
typename std::set<T>::node_type set_node(T value) {
  std::set<T> one{value};
  return one.extract(one.begin());
}

}  // namespace wb
