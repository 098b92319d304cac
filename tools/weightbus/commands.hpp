// The subcommands of `weightbus`. Each lives in its own cmd_*.cpp and is described by a Command, which main uses
// for dispatch, `--help` and usage errors.
#pragma once

#include "common.hpp"

namespace wbcli {

struct Command {
  const char *name;
  const char *summary;  // one line in `weightbus --help`
  const char *usage;    // "weightbus ls [-l] [TOPIC]"; repeated under usage errors
  const char *help;     // the rest of `weightbus CMD --help`: what it does, options, an example
  int (*run)(const GlobalOptions &, Args &);
};

extern const Command kLsCommand;
extern const Command kWatchCommand;
extern const Command kClientsCommand;
extern const Command kDemoCommand;

}  // namespace wbcli
