// A topic's layout as the relay carries it: what a sink needs to create the same topic on its node (names,
// dtypes, shapes, views with their windows, replicas, host or GPU) and to check that a topic it already has is
// the same.
#pragma once

#include <weightbus/weightbus.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "messages.hpp"

namespace wbrelay {

struct TensorLayout {
  std::string name;
  int32_t dtype = 0;
  uint32_t ndim = 0;
  int64_t shape[WB_MAX_DIMS] = {};
  uint64_t nbytes = 0;
  bool cuda = false;
  // Views only: the root tensor whose bytes they show, where the window starts and its strides.
  bool is_view = false;
  std::string parent;
  uint64_t byte_offset = 0;
  int64_t strides[WB_MAX_DIMS] = {};
};

struct TopicLayout {
  uint32_t replicas = 0;
  std::vector<TensorLayout> tensors;  // in the source's index order
};

// The layout of the snapshot's topic. A view's parent is the tensor whose bytes hold the view's first element
// in the snapshot (views of views are described relative to that root).
TopicLayout read_layout(const weightbus::Topic &topic, const weightbus::Snapshot &snapshot);

void encode_layout(const TopicLayout &layout, Writer &out);
TopicLayout decode_layout(Reader &in);  // PeerError when malformed

// Empty when a and b describe the same tensors (by name), else the first difference, for a message.
std::string layout_difference(const TopicLayout &a, const TopicLayout &b);

// Publisher: creates the layout's tensors in a new topic, CUDA ones on GPU ordinal device, then its views.
void create_tensors(weightbus::Topic &topic, const TopicLayout &layout, int32_t device);

}  // namespace wbrelay
