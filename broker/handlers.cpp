// One handler per control message. Each verifies what it reads (the flatbuffers verifier has already checked
// the buffer's structure) and answers with exactly one reply, never trusting the client's claims.
#include <algorithm>

#include "error.hpp"
#include "log.hpp"
#include "protocol_generated.h"
#include "server.hpp"

namespace wb::broker {

namespace {

std::string text(const flatbuffers::String *s) { return s == nullptr ? std::string() : s->str(); }

std::vector<int64_t> longs(const flatbuffers::Vector<int64_t> *v) {
  return v == nullptr ? std::vector<int64_t>() : std::vector<int64_t>(v->begin(), v->end());
}

int check_dims(size_t ndim) {
  if (ndim > WB_MAX_DIMS) return fail(WB_E_SHAPE, "ndim %zu is over the limit of %d", ndim, WB_MAX_DIMS);
  return WB_OK;
}

}  // namespace

void Server::handle(Connection *conn, wire::Received &msg) {
  flatbuffers::Verifier::Options limits;
  limits.max_depth = 16;
  limits.max_tables = 4096;
  flatbuffers::Verifier verifier(msg.data.data(), msg.data.size(), limits);
  if (!verifier.VerifyBuffer<proto::Message>()) {
    fail(WB_E_PROTOCOL, "malformed control message (%zu bytes)", msg.data.size());
    log(LogLevel::kWarn, "pid %u: %s", conn->pid, wb_last_error());
    reply(conn, 0, WB_E_PROTOCOL);
    return;
  }
  const proto::Message *m = proto::GetMessage(msg.data.data());
  uint32_t id = m->id();
  if (conn->uid_refused) {
    fail(WB_E_PERM, "uid %u may not use this broker (it runs as uid %u)", conn->uid, unsigned(getuid()));
    log(LogLevel::kWarn, "pid %u: %s", conn->pid, wb_last_error());
    refuse(conn, id, WB_E_PERM);
    drop(conn, "refused: other uid");
    return;
  }
  if (!conn->attached && m->body_type() != proto::Body::Attach) {
    fail(WB_E_PROTOCOL, "the first message must be Attach");
    refuse(conn, id, WB_E_PROTOCOL);
    return;
  }
  const void *body = m->body();
  switch (m->body_type()) {
    case proto::Body::Attach: return on_attach(conn, id, body);
    case proto::Body::CreateTopic: return on_create_topic(conn, id, body);
    case proto::Body::OpenTopic: return on_open_topic(conn, id, body);
    case proto::Body::CloseTopic: return on_close_topic(conn, id, body);
    case proto::Body::AllocTensors: return on_alloc_tensors(conn, id, body);
    case proto::Body::CreateView: return on_create_view(conn, id, body);
    case proto::Body::GetAllocation: return on_get_allocation(conn, id, body);
    case proto::Body::Subscribe: return on_subscribe(conn, id, body, msg.fds);
    case proto::Body::Published: return on_published(conn, body);
    case proto::Body::RegisterCudaAllocation: return on_register_cuda_allocation(conn, id, body);
    case proto::Body::AddAllocationChunks: return on_add_allocation_chunks(conn, id, body, msg.fds);
    case proto::Body::RegisterTensors: return on_register_tensors(conn, id, body);
    case proto::Body::RevokeAllocation: return on_revoke_allocation(conn, id, body);
    case proto::Body::ImportAllocation: return on_import_allocation(conn, id, body);
    case proto::Body::ReleaseAllocation: return on_release_allocation(conn, id, body);
    default:
      fail(WB_E_PROTOCOL, "unexpected message type %d", int(m->body_type()));
      return refuse(conn, id, WB_E_PROTOCOL);
  }
}

void Server::on_attach(Connection *conn, uint32_t id, const void *body) {
  auto *attach = static_cast<const proto::Attach *>(body);
  if (conn->attached) {
    fail(WB_E_PROTOCOL, "this connection is already attached");
    return refuse(conn, id, WB_E_PROTOCOL);
  }
  shm::Fingerprint want = shm::expected_fingerprint();
  const auto *fields = attach->fingerprint();
  bool same = attach->layout_version() == shm::kLayoutVersion && fields != nullptr &&
              fields->size() == sizeof(want) / sizeof(uint32_t) &&
              std::equal(fields->begin(), fields->end(), reinterpret_cast<const uint32_t *>(&want));
  if (!same) {
    fail(WB_E_ABI_MISMATCH, "the client speaks layout %u, this broker layout %u (or their struct sizes differ)",
         attach->layout_version(), shm::kLayoutVersion);
    log(LogLevel::kWarn, "pid %u: %s", conn->pid, wb_last_error());
    return refuse(conn, id, WB_E_ABI_MISMATCH);
  }
  int rc = registry_.add_client(conn->pid, conn->uid, text(attach->name()), &conn->slot);
  if (rc != WB_OK) {
    log(LogLevel::kWarn, "pid %u: %s", conn->pid, wb_last_error());
    return refuse(conn, id, rc);
  }
  conn->attached = true;
  log(LogLevel::kInfo, "attach pid %u (client %u, '%s')", conn->pid, conn->slot, registry_.seg().client(conn->slot).name);
  reply(conn, id, WB_OK, conn->slot, registry_.seg().header().segment_size, registry_.segment_fd());
}

void Server::on_create_topic(Connection *conn, uint32_t id, const void *body) {
  auto *create = static_cast<const proto::CreateTopic *>(body);
  uint32_t topic;
  std::string name = text(create->name());
  bool existed = registry_.open_topic(name, &topic) == WB_OK;
  int rc = registry_.create_topic(name, create->replicas(), conn->slot, conn->pid, &topic);
  if (rc != WB_OK) return refuse(conn, id, rc);
  conn->published.insert(topic);
  log(LogLevel::kInfo, "topic '%s' %s by pid %u (%u replicas)", name.c_str(), existed ? "taken over" : "created",
      conn->pid, create->replicas());
  reply(conn, id, WB_OK, topic);
}

void Server::on_open_topic(Connection *conn, uint32_t id, const void *body) {
  uint32_t topic;
  int rc = registry_.open_topic(text(static_cast<const proto::OpenTopic *>(body)->name()), &topic);
  if (rc != WB_OK) return refuse(conn, id, rc);
  reply(conn, id, WB_OK, topic);
}

int Server::check_publisher(Connection *conn, uint32_t id, uint32_t topic) {
  int rc = registry_.check_topic(topic);
  if (rc == WB_OK && !registry_.is_publisher(topic, conn->slot)) {
    rc = fail(WB_E_ROLE, "only the publisher of '%s' may do this", registry_.seg().topic(topic).name);
  }
  if (rc != WB_OK) refuse(conn, id, rc);
  return rc;
}

void Server::on_close_topic(Connection *conn, uint32_t id, const void *body) {
  uint32_t topic = static_cast<const proto::CloseTopic *>(body)->topic();
  if (check_publisher(conn, id, topic) != WB_OK) return;
  registry_.release_publisher(topic);
  conn->published.erase(topic);
  log(LogLevel::kInfo, "topic '%s': publisher pid %u closed it", registry_.seg().topic(topic).name, conn->pid);
  reply(conn, id, WB_OK);
}

void Server::on_alloc_tensors(Connection *conn, uint32_t id, const void *body) {
  auto *alloc = static_cast<const proto::AllocTensors *>(body);
  if (check_publisher(conn, id, alloc->topic()) != WB_OK) return;
  std::vector<NewTensor> specs;
  if (alloc->tensors() == nullptr || alloc->tensors()->size() == 0) {
    fail(WB_E_INVAL, "AllocTensors lists no tensors");
    return refuse(conn, id, WB_E_INVAL);
  }
  for (const proto::TensorSpec *spec : *alloc->tensors()) {
    std::vector<int64_t> shape = longs(spec->shape());
    if (int rc = check_dims(shape.size()); rc != WB_OK) return refuse(conn, id, rc);
    specs.push_back(NewTensor{text(spec->name()), spec->dtype(), std::move(shape)});
  }
  uint32_t allocation = 0;
  int fd;
  uint64_t size = 0;
  int rc = registry_.alloc_tensors(alloc->topic(), specs, &allocation, &fd, &size);
  if (rc != WB_OK) return refuse(conn, id, rc);
  log(LogLevel::kDebug, "topic '%s': %zu tensor(s) requested, allocation %u of %llu bytes",
      registry_.seg().topic(alloc->topic()).name, specs.size(), allocation, (unsigned long long)size);
  reply(conn, id, WB_OK, allocation, size, fd);
}

void Server::on_create_view(Connection *conn, uint32_t id, const void *body) {
  auto *view = static_cast<const proto::CreateView *>(body);
  int rc = registry_.check_topic(view->topic());
  std::vector<int64_t> shape = longs(view->shape());
  if (rc == WB_OK) rc = check_dims(shape.size());
  if (rc == WB_OK) {
    rc = registry_.create_view(view->topic(), NewView{text(view->name()), text(view->parent()), view->dtype(),
                                                      view->byte_offset(), shape, longs(view->strides())});
  }
  if (rc != WB_OK) return refuse(conn, id, rc);
  reply(conn, id, WB_OK);
}

void Server::on_get_allocation(Connection *conn, uint32_t id, const void *body) {
  int fd;
  uint64_t size;
  int rc = registry_.allocation_fd(static_cast<const proto::GetAllocation *>(body)->allocation(), &fd, &size);
  if (rc != WB_OK) return refuse(conn, id, rc);
  reply(conn, id, WB_OK, 0, size, fd);
}

void Server::on_subscribe(Connection *conn, uint32_t id, const void *body, std::vector<int> &fds) {
  uint32_t topic = static_cast<const proto::Subscribe *>(body)->topic();
  int rc = registry_.check_topic(topic);
  if (rc == WB_OK && fds.size() != 1) rc = fail(WB_E_PROTOCOL, "Subscribe must carry exactly one descriptor");
  if (rc != WB_OK) return refuse(conn, id, rc);
  subscribers_[topic].emplace_back(conn, fds[0]);
  registry_.seg().topic(topic).notify_subscribers.fetch_add(1);
  fds.clear();  // kept
  reply(conn, id, WB_OK);
}

void Server::on_published(Connection *conn, const void *body) {
  uint32_t topic = static_cast<const proto::Published *>(body)->topic();
  if (registry_.check_topic(topic) != WB_OK || !registry_.is_publisher(topic, conn->slot)) {
    log(LogLevel::kWarn, "pid %u: Published for a topic it does not publish", conn->pid);
    return;
  }
  notify_subscribers(topic);
}

}  // namespace wb::broker
