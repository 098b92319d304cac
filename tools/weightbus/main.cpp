// weightbus: the command-line tool. Parses the global options, picks the command and turns exceptions into
// messages and exit statuses (0 success, 1 failure, 2 usage error).
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"

namespace wbcli {
namespace {

const Command *const kCommands[] = {&kLsCommand,   &kInfoCommand,       &kWatchCommand, &kClientsCommand,
                                    &kStatsCommand, &kLoadCommand,      &kCheckpointCommand, &kRmCommand, &kMapCommand,
                                    &kDiagnoseCommand, &kRelayCommand, &kStopCommand, &kDemoCommand};

const char *kGlobalHelp = R"HELP(usage: weightbus [--socket PATH | --name BROKER] [--json] COMMAND [ARGS...]

Look into a weightbus broker (weightbusd): the topics it holds, the versions being published, the processes
attached to it and the leases they hold; publish safetensors checkpoints and write versions back as
safetensors; map one engine's tensor layout onto another's with zero-copy views. New here? `weightbus demo`
starts a private broker with a publisher and a reader.

commands:
%COMMANDS%

global options (before or after the command):
  --socket PATH   the broker's control socket (default: $WEIGHTBUS_SOCKET, else
                  $XDG_RUNTIME_DIR/weightbus/BROKER.sock, else /tmp/weightbus-UID/BROKER.sock)
  --name BROKER   the broker's name in the default socket path (default: $WEIGHTBUS_NAME, else "default")
  --json          machine-readable output
  -h, --help      this text; `weightbus COMMAND --help` describes a command
  -V, --version   the versions of this tool and of the library it loaded (`checkpoint` has its own
                  --version V: use -V there)

Options take their value as --opt VALUE or --opt=VALUE. Sizes in bytes take a K, M, G or T suffix (powers
of 1024): --shard-size 2G.

exit status: 0 success, 1 a failure (the message names what failed), 2 a usage error, 3 the answer "no" to
what was asked: `watch --timeout-ms` saw no new version, `diagnose --exit-code` found a difference.

examples:
  weightbus demo
  weightbus --name job42 ls -l
  weightbus watch policy --count 3
  weightbus load ./Qwen2-0.5B --topic policy && weightbus checkpoint policy --out ./ckpt
)HELP";

struct CommandLine {
  GlobalOptions global;
  bool help = false;
  bool version = false;
  const Command *command = nullptr;
};

const Command *find_command(const std::string &name) {
  for (const Command *c : kCommands)
    if (name == c->name) return c;
  return nullptr;
}

std::string global_help() {
  std::string list;
  for (const Command *c : kCommands) {
    const std::string name = c->name;
    list += "  " + name + std::string(12 - name.size(), ' ') + c->summary + "\n";  // names are at most 10 bytes
  }
  std::string text = kGlobalHelp;
  const std::string marker = "%COMMANDS%\n";
  return text.replace(text.find(marker), marker.size(), list);
}

// The options every command takes, and -V/--version (which checkpoint's own --version V replaces with -V alone).
constexpr std::string_view kGlobalSpec = "socket: name: json h|help V";

// The command word: the first word that is neither a global option nor the value of one (`weightbus --name b
// ls`), after `help` when that comes first (`weightbus help CMD` is `weightbus CMD --help`). Nothing when
// there is none.
std::optional<std::string> command_word(const std::vector<std::string> &words) {
  bool help = false;
  for (size_t k = 0; k < words.size(); ++k) {
    const std::string &w = words[k];
    if (w == "--") return k + 1 < words.size() ? std::optional(words[k + 1]) : std::nullopt;
    if (w == "--socket" || w == "--name") {
      ++k;
      continue;
    }
    if (w.starts_with("-") && w.size() > 1) continue;
    if (w == "help" && !help) {
      help = true;
      continue;
    }
    return w;
  }
  return std::nullopt;
}

// Global options may stand anywhere (`weightbus ls --json` reads better than `weightbus --json ls`), so the
// command is found first (command_word), then getopt_long parses every word against the global options and the
// command's.
CommandLine parse(const std::vector<std::string> &words, const Command *command, Args *out) {
  CommandLine cl;
  cl.command = command;
  std::string spec(kGlobalSpec);
  if (cl.command) spec += std::string(" ") + cl.command->options;
  if (!cl.command || !cl.command->own_version_option) spec += " version";
  Args args(words, spec);
  cl.global.socket = args.value("--socket").value_or("");
  cl.global.name = args.value("--name").value_or("");
  cl.global.json = args.flag("--json");
  cl.help = args.flag("--help");
  cl.version = args.flag("-V") || ((!cl.command || !cl.command->own_version_option) && args.flag("--version"));
  if (args.shift() == "help") {
    cl.help = true;
    args.shift();
  }
  *out = std::move(args);
  return cl;
}

void print_usage_error(const std::string &message, const Command *command) {
  err_line("weightbus: " + message + "; see weightbus " + (command ? std::string(command->name) + " " : "") +
           "--help");
  if (command) err_line(std::string("usage: ") + command->usage);
}

void print_version() {
  std::string line = std::string("weightbus ") + WB_VERSION_STRING + " (libweightbus " + wb_version_string() + ")";
  if (wb_version() != WB_VERSION) line += " -- the library differs from the one this tool was built against";
  out_line(line);
}

int run(int argc, char **argv) {
  const Command *command = nullptr;
  try {
    const std::vector<std::string> words(argv + 1, argv + argc);
    const std::optional<std::string> name = command_word(words);
    if (name) command = find_command(*name);
    if (name && !command) throw UsageError("unknown command '" + *name + "'");
    Args args;
    const CommandLine cl = parse(words, command, &args);
    if (cl.version) return print_version(), 0;
    if (cl.help && !command) return out_text(global_help()), 0;
    if (cl.help) return out_text(std::string("usage: ") + command->usage + "\n\n" + command->help), 0;
    if (!command) throw UsageError("missing command");
    return command->run(cl.global, args);
  } catch (const UsageError &e) {
    print_usage_error(e.what(), command);
    return 2;
  } catch (...) {
    return report_current_exception();
  }
}

}  // namespace
}  // namespace wbcli

int main(int argc, char **argv) { return wbcli::run(argc, argv); }
