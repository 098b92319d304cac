// What the segment says of the broker, its topics and its leases, as the public API's structs: the one reading
// of them, for the library's calls (wb_broker_get_info, wb_topic_get_info, wb_list_topics, wb_list_leases) and
// for the broker's own metrics (weightbusd --metrics). Read without locks: a moment's picture. The callers
// check struct_size; these functions fill every other field.
#pragma once

#include <cstdint>

#include "layout.hpp"

namespace wb::census {

// Topic entry `slot`, into the fields that out->struct_size has room for: the caller made sure that it holds
// at least wb_topic_info as version 0.1.0 of the library had it (up to `ranks`).
void topic_info(const shm::Segment &seg, uint32_t slot, wb_topic_info *out);

// When topic `slot`'s latest version was published (its version record's CLOCK_REALTIME stamp); 0 before the
// first publish, or when versions are published faster than the record can be read.
uint64_t published_ns(const shm::Segment &seg, uint32_t slot);

// Whether every publishing role of topic t has a live process: a plain topic's publisher, or every rank's.
bool publishers_attached(const shm::Segment &seg, const shm::Topic &t);

// Lease word i of live client c: false when it holds none (or changed while being read); else fills out.
bool lease_info(const shm::Segment &seg, uint32_t c, uint32_t i, wb_lease_info *out);

// The header's broker, limits, use of each and counters.
void broker_info(const shm::Segment &seg, wb_broker_info *out);

}  // namespace wb::census
