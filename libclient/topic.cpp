// Creating, opening, closing and describing topics.
#include <algorithm>
#include <cstddef>
#include <memory>

#include "census.hpp"
#include "client.hpp"
#include "error.hpp"
#include "geometry.hpp"
#include "set_node.hpp"
#include "struct_size.hpp"
#include "topic.hpp"
#include "update.hpp"

namespace wb {

namespace {

// A topic handle made before the broker is asked for the topic: the handle and its node in the client's set,
// so that recording it once the broker has answered cannot fail.
struct NewTopic {
  std::unique_ptr<wb_topic> topic = std::make_unique<wb_topic>();
  std::set<wb_topic *>::node_type node = set_node(topic.get());
};

int add_topic(wb_client *client, uint64_t slot, bool publisher, NewTopic &made, wb_topic **out) {
  if (slot >= client->seg.caps().max_topics) {
    return fail(WB_E_PROTOCOL, "the broker gave topic index %llu", (unsigned long long)slot);
  }
  wb_topic *topic = made.topic.get();
  topic->client = client;
  topic->slot = uint32_t(slot);
  topic->publisher = publisher;
  topic->entry = &client->seg.topic(topic->slot);
  topic->tensors.bind(&client->seg, topic->entry);
  std::lock_guard lock(client->topics_mutex);
  client->topics.insert(std::move(made.node));
  *out = made.topic.release();
  return WB_OK;
}

// A publisher's close: aborts its open update, then tells the broker. The request is made first, so that
// running out of memory leaves the topic and its update as they were.
void close_as_publisher(wb_topic *topic, wb_update *update) {
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateCloseTopic(builder, topic->slot);
  Reply reply;
  if (update != nullptr) abort_update(update);
  topic->client->connection.call(builder, proto::Body::CloseTopic, body.Union(), &reply);
}

// wb_topic_info as version 0.1.0 of the library had it, before the fields of sharded topics: callers built with
// that header pass this struct_size, and get what it has room for (census::topic_info).
constexpr size_t kTopicInfoFirstSize = offsetof(wb_topic_info, ranks);

}  // namespace

int create_topic(wb_client *client, const char *name, uint32_t replicas, uint32_t ranks, uint32_t rank,
                 wb_topic **out) {
  NewTopic made;
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateCreateTopicDirect(builder, name, replicas, ranks, rank);
  Reply reply;
  int rc = client->connection.call(builder, proto::Body::CreateTopic, body.Union(), &reply);
  if (rc != WB_OK) return rc;
  made.topic->rank = ranks > 0 ? rank : shm::kNone;
  return add_topic(client, reply.value, true, made, out);
}

void release_topic(wb_topic *topic) {
  {
    std::lock_guard lock(topic->client->topics_mutex);
    topic->client->topics.erase(topic);
  }
  delete topic;
}

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_topic_create(wb_client *client, const char *name, const wb_topic_options *opts,
                                      wb_topic **out) try {
  wb_topic_options defaults = WB_TOPIC_OPTIONS_INIT;
  if (client == nullptr || out == nullptr) return fail(WB_E_INVAL, "client or out is NULL");
  *out = nullptr;
  if (opts == nullptr) opts = &defaults;
  int rc = check_struct_size(opts->struct_size, sizeof(wb_topic_options), "wb_topic_options");
  if (rc != WB_OK || (rc = geometry::check_name(name, "topic")) != WB_OK) return rc;
  if (opts->replicas < 1 || opts->replicas > WB_MAX_REPLICAS) {
    return fail(WB_E_INVAL, "replicas is %u, must be 1..%d", opts->replicas, WB_MAX_REPLICAS);
  }
  return create_topic(client, name, opts->replicas, 0, 0, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_open(wb_client *client, const char *name, wb_topic **out) try {
  if (client == nullptr || out == nullptr) return fail(WB_E_INVAL, "client or out is NULL");
  *out = nullptr;
  int rc = geometry::check_name(name, "topic");
  if (rc != WB_OK) return rc;
  NewTopic made;
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateOpenTopicDirect(builder, name);
  Reply reply;
  if ((rc = client->connection.call(builder, proto::Body::OpenTopic, body.Union(), &reply)) != WB_OK) return rc;
  return add_topic(client, reply.value, false, made, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_remove(wb_client *client, const char *name) try {
  if (client == nullptr) return fail(WB_E_INVAL, "client is NULL");
  int rc = geometry::check_name(name, "topic");
  if (rc != WB_OK) return rc;
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateRemoveTopicDirect(builder, name);
  Reply reply;
  return client->connection.call(builder, proto::Body::RemoveTopic, body.Union(), &reply);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_close(wb_topic *topic) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  wb_update *update;
  {
    std::lock_guard lock(topic->handles_mutex);
    if (!topic->snapshots.empty()) {
      return fail(WB_E_STATE, "%zu snapshots of this topic are still held: release them first",
                  topic->snapshots.size());
    }
    if (!topic->arms.empty()) {
      return fail(WB_E_STATE, "%zu arms of this topic are still held (wb_plan_arm): wait for or release them first",
                  topic->arms.size());
    }
    update = topic->update;
  }
  if (topic->publisher && topic->client->connection.check_broker() == WB_OK) {
    close_as_publisher(topic, update);
  } else if (update != nullptr) {
    abort_update(update);
  }
  release_topic(topic);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_get_info(wb_topic *topic, wb_topic_info *out) try {
  if (topic == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic or out is NULL");
  int rc = check_struct_size(out->struct_size, kTopicInfoFirstSize, "wb_topic_info");
  if (rc != WB_OK || (rc = check_topic_live(topic)) != WB_OK) return rc;
  census::topic_info(topic->client->seg, topic->slot, out);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_list_topics(wb_client *client, wb_topic_info *out, uint32_t capacity, uint32_t *count) try {
  if (client == nullptr || count == nullptr || (out == nullptr && capacity > 0)) {
    return fail(WB_E_INVAL, "client, out or count is NULL");
  }
  if (int rc = client->connection.check_broker(); rc != WB_OK) return rc;
  const shm::Segment &seg = client->seg;
  uint32_t total = std::min(seg.header().topic_count.load(std::memory_order_acquire), seg.caps().max_topics);
  // The elements are out[0].struct_size bytes apart, so that callers of an older, shorter struct keep working.
  uint32_t stride = capacity > 0 ? out[0].struct_size : 0;
  if (capacity > 0) {
    if (int rc = check_struct_size(stride, kTopicInfoFirstSize, "wb_topic_info"); rc != WB_OK) return rc;
  }
  uint32_t found = 0;
  for (uint32_t slot = 0; slot < total; ++slot) {
    const shm::Topic &entry = seg.topic(slot);
    if (entry.state.load(std::memory_order_acquire) != uint32_t(shm::TopicState::kLive)) continue;
    if (found < capacity) {
      auto *info = reinterpret_cast<wb_topic_info *>(reinterpret_cast<char *>(out) + uint64_t{found} * stride);
      info->struct_size = stride;
      census::topic_info(seg, slot, info);
    }
    ++found;
  }
  *count = found;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
