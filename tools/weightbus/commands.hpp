// The subcommands of `weightbus`. Each lives in its own cmd_*.cpp and is described by a Command, which main uses
// for dispatch, `--help` and usage errors.
#pragma once

#include "common.hpp"

namespace wbcli {

// Exit statuses besides 0 (success), 1 (a failure) and 2 (a usage error): the answer "no" to what a command
// was asked to find out, distinct from a failure so that scripts can tell them apart.
constexpr int kExitTimeout = 3;  // watch: no new version within --timeout-ms
constexpr int kExitDiffers = 3;  // diagnose --exit-code: the topic and the checkpoint differ

struct Command {
  const char *name;
  const char *summary;  // one line in `weightbus --help`
  const char *usage;    // "weightbus ls [-l] [TOPIC]"; repeated under usage errors
  const char *help;     // the rest of `weightbus CMD --help`: what it does, options, an example
  const char *options;  // its options, as Args takes them ("count: timeout-ms: since:"); the global ones are added
  int (*run)(const GlobalOptions &, Args &);
  // The command has its own --version option (checkpoint's version number), so after the command word
  // --version is its option, and only -V prints the tool's version.
  bool own_version_option = false;
};

extern const Command kLsCommand;
extern const Command kWatchCommand;
extern const Command kClientsCommand;
extern const Command kDemoCommand;
extern const Command kInfoCommand;
extern const Command kStatsCommand;
extern const Command kLoadCommand;
extern const Command kCheckpointCommand;
extern const Command kMapCommand;
extern const Command kDiagnoseCommand;
extern const Command kRelayCommand;
extern const Command kStopCommand;
extern const Command kRmCommand;

}  // namespace wbcli
