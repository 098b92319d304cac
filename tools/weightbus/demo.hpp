// The two client processes of `weightbus demo` (demo_roles.cpp); cmd_demo.cpp runs the broker and forks them.
#pragma once

#include <cstdint>
#include <string>

namespace wbcli::demo {

constexpr const char *kTopic = "policy";
constexpr uint32_t kReplicas = 2;
constexpr uint32_t kTensorCount = 4;
constexpr int64_t kSide = 256;             // each tensor is kSide x kSide f32
constexpr int64_t kStartupMs = 10000;      // broker start-up, attaching, waiting for the topic or the peer
constexpr int64_t kStepTimeoutMs = 10000;  // one update begin, one wait, beyond the publishing interval

// A one-byte signal between the two processes. Each side closes the end it does not use, so that a peer's death
// reads as end of file instead of a wait for the timeout.
struct Signal {
  int read = -1;
  int write = -1;
};

struct Config {
  int64_t versions = 5;
  int64_t interval_ms = 200;
  std::string socket;
  Signal topic_ready;   // publisher -> reader: the topic and its tensors exist
  Signal reader_ready;  // reader -> publisher: the reader is waiting, so no version goes unseen
};

// Bodies of the child processes: they attach on their own (handles do not survive fork) and return an exit
// status or throw.
int publisher_main(const Config &c);
int reader_main(const Config &c);

// Prints "who: what" as one line.
void say(const char *who, const std::string &what);

}  // namespace wbcli::demo
