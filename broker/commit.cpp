// Sharded topics: the broker commits a version once every rank has published it, and ends a rank's version
// when its publisher leaves half-way (docs/sharded-models.md, "Versions").
// CONTRACT STUB (issue 19): replaced by the implementation.
#include "registry.hpp"

namespace wb::broker {

bool Registry::commit_if_complete(uint32_t) { return false; }

void Registry::end_rank_version(uint32_t, uint32_t) {}

}  // namespace wb::broker
