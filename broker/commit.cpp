// Sharded topics: the broker commits a version that every rank has published when the last rank's publisher did
// not (it died, or it is of a segment this broker adopted), and ends a rank's version when its publisher leaves
// half-way (docs/sharded-models.md, "Versions"). The commit itself is topic_state::commit_rank_version, which
// the ranks' publishers call too: each version commits once, whoever gets there.
#include "registry.hpp"
#include "topic_state.hpp"

namespace wb::broker {

bool Registry::commit_if_complete(uint32_t topic) {
  if (topic >= seg_.header().topic_count.load()) return false;
  return topic_state::commit_rank_version(seg_, seg_.topic(topic), topic);
}

void Registry::end_rank_version(uint32_t topic, uint32_t rank) {
  if (topic >= seg_.header().topic_count.load()) return;
  topic_state::end_rank_update(seg_, seg_.topic(topic), rank);
}

}  // namespace wb::broker
