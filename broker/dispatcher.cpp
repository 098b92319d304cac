#include "dispatcher.hpp"

#include <unistd.h>

#include <cstdio>

#include "error.hpp"
#include "log.hpp"
#include "protocol_generated.h"

namespace wb::broker {

int Dispatcher::open_registry(bool *adopted) {
  return registry_.open(options_.name, options_.caps, options_.per_client, adopted);
}

bool Dispatcher::reap_orphans() {
  registry_.reap_orphans();
  return registry_.has_orphans();
}

void Dispatcher::handle(Client *client, wire::Received &msg) {
  flatbuffers::Verifier::Options limits;
  limits.max_depth = 16;
  limits.max_tables = 4096;
  flatbuffers::Verifier verifier(msg.data.data(), msg.data.size(), limits);
  if (!verifier.VerifyBuffer<proto::Message>()) {
    fail(WB_E_PROTOCOL, "malformed control message (%zu bytes)", msg.data.size());
    return refuse_unreadable(client, WB_E_PROTOCOL);
  }
  const proto::Message *m = proto::GetMessage(msg.data.data());
  answered_ = false;
  try {
    dispatch(client, m, msg.fds);
  } catch (...) {
    char what[64];
    snprintf(what, sizeof(what), "weightbusd, handling %s", proto::EnumNameBody(m->body_type()));
    int rc = abi_error(what);
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: %s", client->pid, wb_last_error());
    bool notice = m->body_type() == proto::Body::Published || m->body_type() == proto::Body::RankPublished;
    if (!answered_ && !notice) reply(client, m->id(), rc);
  }
}

void Dispatcher::dispatch(Client *client, const proto::Message *m, std::vector<int> &fds) {
  uint32_t id = m->id();
  if (client->uid_refused) {
    fail(WB_E_PERM, "uid %u may not use this broker (it runs as uid %u)", client->uid, unsigned(getuid()));
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: %s", client->pid, wb_last_error());
    refuse(client, id, WB_E_PERM);
    client->hang_up = "refused: other uid";
    return;
  }
  if (!client->attached && m->body_type() != proto::Body::Attach) {
    fail(WB_E_PROTOCOL, "the first message must be Attach");
    return refuse(client, id, WB_E_PROTOCOL);
  }
  const void *body = m->body();
  if (body == nullptr) {  // the verifier accepts a union's type without its value
    fail(WB_E_PROTOCOL, "message of type %d without its body", int(m->body_type()));
    return refuse(client, id, WB_E_PROTOCOL);
  }
  switch (m->body_type()) {
    case proto::Body::Attach: return on_attach(client, id, body);
    case proto::Body::CreateTopic: return on_create_topic(client, id, body);
    case proto::Body::OpenTopic: return on_open_topic(client, id, body);
    case proto::Body::CloseTopic: return on_close_topic(client, id, body);
    case proto::Body::RemoveTopic: return on_remove_topic(client, id, body);
    case proto::Body::AllocTensors: return on_alloc_tensors(client, id, body);
    case proto::Body::CreateView: return on_create_view(client, id, body);
    case proto::Body::GetAllocation: return on_get_allocation(client, id, body);
    case proto::Body::Subscribe: return on_subscribe(client, id, body, fds);
    case proto::Body::Published: return on_published(client, body);
    case proto::Body::RegisterCudaAllocation: return on_register_cuda_allocation(client, id, body);
    case proto::Body::AddAllocationChunks: return on_add_allocation_chunks(client, id, body, fds);
    case proto::Body::RegisterTensors: return on_register_tensors(client, id, body);
    case proto::Body::RevokeAllocation: return on_revoke_allocation(client, id, body);
    case proto::Body::ImportAllocation: return on_import_allocation(client, id, body);
    case proto::Body::ReleaseAllocation: return on_release_allocation(client, id, body);
    case proto::Body::SealRank: return on_seal_rank(client, id, body);
    case proto::Body::RankPublished: return on_rank_published(client, body);
    default:
      fail(WB_E_PROTOCOL, "unexpected message type %d", int(m->body_type()));
      return refuse(client, id, WB_E_PROTOCOL);
  }
}

void Dispatcher::refuse_unreadable(Client *client, int code) {
  WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: %s", client->pid, wb_last_error());
  reply(client, 0, code);  // id 0: the request's own id could not be read
}

void Dispatcher::refuse_connection(int fd, int code) {
  Client unserved;
  unserved.fd = fd;
  reply(&unserved, 0, code);
}

void Dispatcher::client_gone(Client *client, const char *why) {
  for (auto &[topic, subs] : subscribers_) {
    uint32_t t = topic;
    std::erase_if(subs, [this, client, t](const std::pair<Client *, int> &sub) {
      if (sub.first == client) unsubscribe(client, t, sub.second);
      return sub.first == client;
    });
  }
  if (!client->attached) return;
  drop_cuda(client);
  for (uint32_t topic = 0; topic < registry_.seg().header().topic_count.load(); ++topic) {
    if (!registry_.is_publisher(topic, client->slot)) continue;
    uint32_t dirty = release_publisher(topic, client->slot);
    registry_.settle_gpu_words(topic);  // a detach waited for its words; a crash leaves them to the broker
    log(LogLevel::kInfo, "reclaim pid %u: publisher of '%s' (left %u tensors dirty)", client->pid,
        registry_.seg().topic(topic).name, dirty);
  }
  uint32_t leases = registry_.remove_client(client->slot);
  if (leases > 0) log(LogLevel::kInfo, "reclaim pid %u: %u lease(s)", client->pid, leases);
  WB_LOG_LIMITED(LogLevel::kInfo, "detach pid %u (client %u): %s", client->pid, client->slot, why);
  client->attached = false;
}

}  // namespace wb::broker
