// The broker's side of sharded topics: sealing a rank's layout (the coverage check) and committing a version
// once every rank has published it.
// CONTRACT STUB (issue 19): replaced by the implementation.
#include "dispatcher.hpp"
#include "error.hpp"
#include "log.hpp"

namespace wb::broker {

void Dispatcher::on_seal_rank(Client *client, uint32_t id, const void *) {
  refuse(client, id, fail(WB_E_STATE, "SealRank: not built yet"));
}

void Dispatcher::on_rank_published(Client *client, const void *) {
  WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: RankPublished: not built yet", client->pid);
}

}  // namespace wb::broker
