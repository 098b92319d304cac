// weightbus rm: remove a topic that no publisher holds and no lease pins.
#include <string>

#include "commands.hpp"
#include "output_json.hpp"
#include "lease_holders.hpp"

namespace wbcli {
namespace {

int run_rm(const GlobalOptions &g, Args &args) {
  const std::string name = args.positionals(1, 1, "TOPIC").front();
  weightbus::Client client = attach(g, "weightbus rm");
  try {
    client.remove(name);
  } catch (const weightbus::Error &e) {
    const std::string holders = e.code() == WB_E_BUSY ? lease_holders_text(client, name) : "";
    throw Failure("remove topic '" + name + "'", e, holders.empty() ? "" : "leased by " + holders);
  }
  out_line(g.json ? json_text(Json::object({{"removed", name}})) : "removed topic '" + name + "'");
  return 0;
}

}  // namespace

const Command kRmCommand = {
    "rm",
    "remove a topic that no publisher holds and no reader leases",
    "weightbus rm TOPIC [--json]",
    R"HELP(Remove TOPIC (wb_topic_remove): its name is free again, its tensors and versions are gone and its
shared memory is freed once no process maps it. A topic is removed only when unused: its publisher closed it
or exited, and no reader holds a lease on one of its versions (else WB_E_BUSY, naming the publisher's pid or
the number of leases, and a hint naming each holder: "leased by pid N (NAME) holding version V"). Readers
that still have the topic open get WB_E_NOT_FOUND from then on.

options:
  --json   print {"removed": TOPIC}

examples:
  weightbus rm policy
  weightbus rm old-policy --json
)HELP",
    "",
    run_rm,
};

}  // namespace wbcli
