// The input of fuzz-peer-checks, shared with make-corpus: what a client (or broker) learns about what it is
// handed, fixed fields first, then the path or object name the messages must carry.
#pragma once

#include <cstdint>

struct PeerChecksInput {
  uint32_t st_mode;    // type and permission bits of a stat result
  uint32_t st_uid;     // its owner
  uint32_t us;         // the uid checking
  uint32_t peer_uid;   // SO_PEERCRED's uid
  int32_t peer_pid;    // and pid
  uint16_t fd_mode;    // permission bits given to a real shared-memory object of ours, checked through fstat
  uint16_t reserved;
};
