// The broker's side of sharded topics: sealing a rank's layout (the coverage check) and committing a version
// once every rank has published it.
#include "dispatcher.hpp"
#include "error.hpp"
#include "log.hpp"
#include "protocol_generated.h"

namespace wb::broker {

void Dispatcher::on_seal_rank(Client *client, uint32_t id, const void *body) {
  uint32_t topic = static_cast<const proto::SealRank *>(body)->topic();
  int rc = registry_.check_topic(topic);
  if (rc == WB_OK) rc = registry_.seal_rank(topic, client->slot);
  if (rc != WB_OK) return refuse(client, id, rc);
  const shm::Topic &t = registry_.seg().topic(topic);
  log(LogLevel::kInfo, "topic '%s': rank %u (pid %u) sealed, %u of %u ranks", t.name,
      registry_.rank_of(topic, client->slot), client->pid, t.sealed_ranks.load(), t.ranks);
  reply(client, id, WB_OK);
}

// A rank stored its published word and, the last rank, committed the version (or the broker does it here, for a
// last rank whose process died first): notify-fd subscribers learn of a committed version from this notice. A
// notice from a client that holds no rank of the topic changes nothing (the commit only reads what the ranks
// stored).
void Dispatcher::on_rank_published(Client *client, const void *body) {
  auto notice = static_cast<const proto::RankPublished *>(body);
  uint32_t topic = notice->topic();
  if (registry_.check_topic(topic) != WB_OK || registry_.rank_of(topic, client->slot) == shm::kNone) {
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: RankPublished for a topic it publishes no rank of", client->pid);
    return;
  }
  bool committed = registry_.commit_if_complete(topic);
  if (committed || registry_.seg().topic(topic).latest.load(std::memory_order_seq_cst) >= notice->version()) {
    notify_subscribers(topic);  // once per rank's notice of a committed version: the subscribers' pipes coalesce
  }
}

}  // namespace wb::broker
