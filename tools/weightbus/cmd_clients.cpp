// weightbus clients: the processes attached to the broker.
#include <string>
#include <vector>

#include "commands.hpp"
#include "output_json.hpp"

namespace wbcli {
namespace {

// This command is a client too; it is marked so that nobody hunts for the stray process.
Json client_json(const wb_client_info &c, uint32_t self) {
  return Json::object({{"id", c.id},
                       {"pid", c.pid},
                       {"name", fixed_string(c.name, sizeof c.name)},
                       {"topics_published", c.topics_published},
                       {"leases", c.leases},
                       {"self", c.id == self}});
}

void print_text(const std::vector<wb_client_info> &clients, uint32_t self) {
  std::vector<std::vector<std::string>> rows = {{"PID", "ID", "NAME", "PUBLISHING", "LEASES"}};
  for (const wb_client_info &c : clients) {
    std::string name = fixed_string(c.name, sizeof c.name);
    if (c.id == self) name += " (this command)";
    rows.push_back({std::to_string(c.pid), std::to_string(c.id), name, std::to_string(c.topics_published),
                    std::to_string(c.leases)});
  }
  print_table(rows);
}

int run_clients(const GlobalOptions &g, Args &args) {
  args.positionals(0, 0);
  const std::string socket = socket_path(g);
  weightbus::Client client = attach(g, "weightbus clients");
  const uint32_t self = doing("read our client id", [&] { return client.id(); });
  const std::vector<wb_client_info> clients = doing("list clients", [&] { return client.clients(); });
  if (!g.json) return print_text(clients, self), 0;
  Json items = Json::array();
  for (const wb_client_info &c : clients) items.push_back(client_json(c, self));
  out_json(Json::object({{"socket", socket}, {"clients", items}}));
  return 0;
}

}  // namespace

const Command kClientsCommand = {
    "clients",
    "list the processes attached to the broker",
    "weightbus clients [--json]",
    R"HELP(List the clients attached to the broker: pid, client id (its slot in the broker's table), name (set by
the program, default its executable's name), how many topics it publishes and how many leases (pinned
versions) it holds now. This command is itself a client and is marked "(this command)".

options:
  --json   print one JSON document: {"socket": ..., "clients": [{"id", "pid", "name", "topics_published",
           "leases", "self"}]}

examples:
  weightbus clients
  weightbus --name job42 clients --json
)HELP",
    "",
    run_clients,
};

}  // namespace wbcli
