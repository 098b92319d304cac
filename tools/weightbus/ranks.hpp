// The ranks of a sharded topic as the CLI shows them (info, stats): each rank's state, and which ranks the
// model waits for.
#ifndef WBCLI_RANKS_HPP
#define WBCLI_RANKS_HPP

#include <string>
#include <vector>

#include "common.hpp"
#include "output_json.hpp"

namespace wbcli {

// Every rank of the topic (none for a plain topic).
std::vector<wb_rank_info> topic_ranks(const weightbus::Topic &topic, const wb_topic_info &info);

// The ranks that have not published the version some rank already published (latest + 1): the version is
// committed once they do. Empty while no version is pending.
std::vector<wb_rank_info> lagging_ranks(const std::vector<wb_rank_info> &ranks, uint64_t latest);

// "version 42 waits for rank(s) 3 (pid 812, last published 41, 5.2 s ago)", or "" when nothing is pending:
// the words of the library's WB_E_TIMEOUT.
std::string waits_for(const std::vector<wb_rank_info> &ranks, uint64_t latest);

// [{"rank", "pid", "sealed", "shards", "dirty", "published", "writing", "lag", "published_ns", "begin_ns",
// "bytes"}], one per rank; lag: versions behind the one pending or, with none pending, the latest.
Json ranks_json(const std::vector<wb_rank_info> &ranks, uint64_t latest);

// Versions rank is behind: the pending version when there is one, else the latest.
uint64_t rank_lag(const wb_rank_info &rank, const std::vector<wb_rank_info> &ranks, uint64_t latest);

}  // namespace wbcli

#endif  // WBCLI_RANKS_HPP
