// The ranks of a sharded topic as the CLI shows them.
#include "ranks.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "common.hpp"

namespace wbcli {
namespace {

uint64_t newest_published(const std::vector<wb_rank_info> &ranks) {
  uint64_t newest = 0;
  for (const wb_rank_info &r : ranks) newest = std::max(newest, r.published);
  return newest;
}

uint64_t realtime_ns() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

std::string ago(uint64_t then_ns) {
  if (then_ns == 0) return "never";
  const uint64_t now = realtime_ns();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s ago", now > then_ns ? double(now - then_ns) / 1e9 : 0.0);
  return buf;
}

}  // namespace

std::vector<wb_rank_info> topic_ranks(const weightbus::Topic &topic, const wb_topic_info &info) {
  std::vector<wb_rank_info> ranks;
  for (uint32_t r = 0; r < info.ranks; ++r)
    ranks.push_back(doing("describe rank " + std::to_string(r), [&] { return topic.rank_info(r); }));
  return ranks;
}

std::vector<wb_rank_info> lagging_ranks(const std::vector<wb_rank_info> &ranks, uint64_t latest) {
  const uint64_t pending = newest_published(ranks);
  std::vector<wb_rank_info> lagging;
  if (pending <= latest) return lagging;
  for (const wb_rank_info &r : ranks)
    if (r.published < pending) lagging.push_back(r);
  return lagging;
}

std::string waits_for(const std::vector<wb_rank_info> &ranks, uint64_t latest) {
  const std::vector<wb_rank_info> lagging = lagging_ranks(ranks, latest);
  if (lagging.empty()) return "";
  std::string text = "version " + std::to_string(newest_published(ranks)) + " waits for rank(s)";
  for (size_t i = 0; i < lagging.size(); ++i) {
    const wb_rank_info &r = lagging[i];
    text += (i ? ", " : " ") + std::to_string(r.rank) + " (" +
            (r.pid ? "pid " + std::to_string(r.pid) : std::string("no publisher")) + ", last published " +
            std::to_string(r.published) + ", " + ago(r.published_ns) + ")";
  }
  return text;
}

uint64_t rank_lag(const wb_rank_info &rank, const std::vector<wb_rank_info> &ranks, uint64_t latest) {
  const uint64_t target = std::max(newest_published(ranks), latest);
  return target > rank.published ? target - rank.published : 0;
}

namespace {

Json rank_json(const wb_rank_info &rank, const std::vector<wb_rank_info> &ranks, uint64_t latest) {
  return Json::object({{"rank", rank.rank},
                       {"pid", rank.pid},
                       {"sealed", rank.sealed != 0},
                       {"shards", rank.shards},
                       {"dirty", rank.dirty != 0},
                       {"published", rank.published},
                       {"writing", rank.writing},
                       {"lag", rank_lag(rank, ranks, latest)},
                       {"published_ns", rank.published_ns},
                       {"begin_ns", rank.begin_ns},
                       {"bytes", rank.bytes}});
}

}  // namespace

Json ranks_json(const std::vector<wb_rank_info> &ranks, uint64_t latest) {
  Json items = Json::array();
  for (const wb_rank_info &r : ranks) items.push_back(rank_json(r, ranks, latest));
  return items;
}

}  // namespace wbcli
