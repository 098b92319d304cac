// The dispatcher's answers: a reply or refusal on the client's socket, built in the dispatcher's own arena, and
// the publisher check whose failure is answered. Below the handlers and dispatcher.cpp, which all answer
// through these and call nothing above them.
#include "dispatcher.hpp"

#include <new>

#include "error.hpp"
#include "log.hpp"
#include "protocol_generated.h"

namespace wb::broker {

uint8_t *ReplyArena::allocate(size_t size) {
  if (size > kSize) throw std::bad_alloc();
  return bytes_;
}

void Dispatcher::reply(Client *client, uint32_t id, int code, uint64_t value, uint64_t size, int fd) {
  flatbuffers::FlatBufferBuilder builder(ReplyArena::kSize, &reply_arena_);
  auto message = code == WB_OK ? 0 : builder.CreateString(wb_last_error());
  auto body = proto::CreateReply(builder, code, message, value, size);
  builder.Finish(proto::CreateMessage(builder, id, proto::Body::Reply, body.Union()));
  int rc = wire::send(client->fd, builder.GetBufferPointer(), builder.GetSize(), fd >= 0 ? &fd : nullptr, fd >= 0);
  if (rc != WB_OK) client->hang_up = "could not be answered (its socket is full or closed)";
  answered_ = true;
}

void Dispatcher::refuse(Client *client, uint32_t id, int code) {
  WB_LOG_LIMITED(LogLevel::kDebug, "pid %u: refused with %d: %s", client->pid, code, wb_last_error());
  reply(client, id, code);
}

int Dispatcher::check_publisher(Client *client, uint32_t id, uint32_t topic) {
  int rc = registry_.check_topic(topic);
  if (rc == WB_OK && !registry_.is_publisher(topic, client->slot)) {
    rc = fail(WB_E_ROLE, "only the publisher of '%s' may do this", registry_.seg().topic(topic).name);
  }
  if (rc != WB_OK) refuse(client, id, rc);
  return rc;
}

}  // namespace wb::broker
