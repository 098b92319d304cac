// A rank's seal (SealRank), in a file of its own below update.cpp and shard.cpp, which both call it
// (wb_update_begin, wb_topic_seal_rank): shard.cpp calls topic.cpp, which calls update.cpp.
#include "client.hpp"
#include "topic.hpp"

namespace wb {

int seal_rank(wb_topic *topic) {
  if (topic->rank_sealed) return WB_OK;
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateSealRank(builder, topic->slot);
  Reply reply;
  int rc = topic->client->connection.call(builder, proto::Body::SealRank, body.Union(), &reply);
  if (rc != WB_OK) return rc;
  topic->rank_sealed = true;
  return WB_OK;
}

}  // namespace wb
