// One handler per control message. Each verifies what it reads (the flatbuffers verifier has already checked
// the buffer's structure) and answers with exactly one reply, never trusting the client's claims.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "dispatcher.hpp"
#include "error.hpp"
#include "flat_vectors.hpp"
#include "log.hpp"
#include "protocol_generated.h"
#include "shard_region.hpp"

namespace wb::broker {

namespace {

int check_dims(size_t ndim) {
  if (ndim > WB_MAX_DIMS) return fail(WB_E_SHAPE, "ndim %zu is over the limit of %d", ndim, WB_MAX_DIMS);
  return WB_OK;
}


// A notify descriptor must be a pipe's write end. It is made non-blocking here: a reader that never drains a
// blocking pipe would otherwise stall the broker's write, and every client with it.
int check_notify_pipe(const std::vector<int> &fds) {
  if (fds.size() != 1) return fail(WB_E_PROTOCOL, "Subscribe must carry exactly one descriptor");
  struct stat st;
  int flags = fcntl(fds[0], F_GETFL);
  if (fstat(fds[0], &st) != 0 || !S_ISFIFO(st.st_mode) || flags < 0 || (flags & O_ACCMODE) != O_WRONLY) {
    return fail(WB_E_INVAL, "Subscribe must carry the write end of a pipe");
  }
  if (fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno("making a notify pipe non-blocking");
  return WB_OK;
}

}  // namespace

void Dispatcher::on_attach(Client *client, uint32_t id, const void *body) {
  auto *attach = static_cast<const proto::Attach *>(body);
  if (client->attached) {
    fail(WB_E_PROTOCOL, "this connection is already attached");
    return refuse(client, id, WB_E_PROTOCOL);
  }
  bool same =
      attach->layout_version() == shm::kLayoutVersion && items(attach->fingerprint()) == shm::fingerprint_words();
  if (!same) {
    fail(WB_E_ABI_MISMATCH, "the client speaks layout %u, this broker layout %u (or their struct sizes differ)",
         attach->layout_version(), shm::kLayoutVersion);
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: %s", client->pid, wb_last_error());
    return refuse(client, id, WB_E_ABI_MISMATCH);
  }
  if (attach->resume()) return on_resume(client, id, attach);
  int rc = registry_.add_client(client->pid, client->uid, text(attach->name()), &client->slot);
  if (rc != WB_OK) {
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: %s", client->pid, wb_last_error());
    return refuse(client, id, rc);
  }
  client->attached = true;
  WB_LOG_LIMITED(LogLevel::kInfo, "attach pid %u (client %u, '%s')", client->pid, client->slot,
      registry_.seg().client(client->slot).name);
  reply(client, id, WB_OK, client->slot, registry_.seg().header().segment_size, registry_.segment_fd());
}

// A client of the dead broker takes its slot back: the segment already holds its leases and roles; this
// connection learns which topics it publishes and which CUDA allocations it has open.
void Dispatcher::on_resume(Client *client, uint32_t id, const proto::Attach *attach) {
  std::set<uint32_t> imported;  // made first: from resume_client on, nothing may fail
  for (uint32_t allocation : items(attach->imported())) {
    if (registry_.is_cuda_allocation(allocation)) imported.insert(allocation);
  }
  int rc = registry_.resume_client(attach->slot(), attach->generation(), client->pid);
  if (rc != WB_OK) {
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: %s", client->pid, wb_last_error());
    return refuse(client, id, rc);
  }
  client->slot = attach->slot();
  client->attached = true;
  client->imported.swap(imported);
  for (uint32_t allocation : client->imported) registry_.add_importer(allocation);
  log(LogLevel::kInfo, "resume pid %u (client %u, '%s'): %u topic(s) published, %zu CUDA import(s)", client->pid,
      client->slot, registry_.seg().client(client->slot).name,
      registry_.seg().client(client->slot).topics_published.load(), client->imported.size());
  reply(client, id, WB_OK, client->slot, registry_.seg().header().segment_size);
}

void Dispatcher::on_create_topic(Client *client, uint32_t id, const void *body) {
  auto *create = static_cast<const proto::CreateTopic *>(body);
  uint32_t topic;
  std::string name = text(create->name());
  bool existed = registry_.open_topic(name, &topic) == WB_OK;
  int rc = registry_.create_topic(name, create->replicas(), create->ranks(), create->rank(), client->slot, client->pid,
                                  &topic);
  if (rc != WB_OK) return refuse(client, id, rc);
  if (create->ranks() == 0) {
    log(LogLevel::kInfo, "topic '%s' %s by pid %u (%u replicas)", name.c_str(), existed ? "taken over" : "created",
        client->pid, create->replicas());
  } else {
    log(LogLevel::kInfo, "topic '%s' %s as rank %u of %u by pid %u (%u replicas)", name.c_str(),
        existed ? "joined" : "created", create->rank(), create->ranks(), client->pid, create->replicas());
  }
  reply(client, id, WB_OK, topic);
}

void Dispatcher::on_open_topic(Client *client, uint32_t id, const void *body) {
  uint32_t topic;
  int rc = registry_.open_topic(text(static_cast<const proto::OpenTopic *>(body)->name()), &topic);
  if (rc != WB_OK) return refuse(client, id, rc);
  reply(client, id, WB_OK, topic);
}

void Dispatcher::on_remove_topic(Client *client, uint32_t id, const void *body) {
  std::string name = text(static_cast<const proto::RemoveTopic *>(body)->name());
  uint32_t topic;
  int rc = registry_.remove_topic(name, &topic);
  if (rc != WB_OK) return refuse(client, id, rc);
  drop_subscribers(topic);
  log(LogLevel::kInfo, "topic '%s' removed by pid %u", name.c_str(), client->pid);
  reply(client, id, WB_OK);
}

void Dispatcher::on_close_topic(Client *client, uint32_t id, const void *body) {
  uint32_t topic = static_cast<const proto::CloseTopic *>(body)->topic();
  if (check_publisher(client, id, topic) != WB_OK) return;
  release_publisher(topic, client->slot);
  log(LogLevel::kInfo, "topic '%s': publisher pid %u closed it", registry_.seg().topic(topic).name, client->pid);
  reply(client, id, WB_OK);
}

void Dispatcher::on_alloc_tensors(Client *client, uint32_t id, const void *body) {
  auto *alloc = static_cast<const proto::AllocTensors *>(body);
  if (check_publisher(client, id, alloc->topic()) != WB_OK) return;
  std::vector<NewTensor> specs;
  if (alloc->tensors() == nullptr || alloc->tensors()->size() == 0) {
    fail(WB_E_INVAL, "AllocTensors lists no tensors");
    return refuse(client, id, WB_E_INVAL);
  }
  for (const proto::TensorSpec *spec : *alloc->tensors()) {
    std::vector<int64_t> shape = items(spec->shape());
    if (int rc = check_dims(shape.size()); rc != WB_OK) return refuse(client, id, rc);
    NewTensor tensor{text(spec->name()), spec->dtype(), std::move(shape), {}};
    if (int rc = read_shard(spec->shard(), &tensor.shard); rc != WB_OK) return refuse(client, id, rc);
    specs.push_back(std::move(tensor));
  }
  uint32_t allocation = 0;
  int fd;
  uint64_t size = 0;
  int rc = registry_.alloc_tensors(alloc->topic(), client->slot, specs, &allocation, &fd, &size);
  if (rc != WB_OK) return refuse(client, id, rc);
  log(LogLevel::kDebug, "topic '%s': %zu tensor(s) requested, allocation %u of %llu bytes",
      registry_.seg().topic(alloc->topic()).name, specs.size(), allocation, (unsigned long long)size);
  reply(client, id, WB_OK, allocation, size, fd);
}

void Dispatcher::on_create_view(Client *client, uint32_t id, const void *body) {
  auto *view = static_cast<const proto::CreateView *>(body);
  int rc = registry_.check_topic(view->topic());
  std::vector<int64_t> shape = items(view->shape());
  if (rc == WB_OK) rc = check_dims(shape.size());
  if (rc == WB_OK) {
    rc = registry_.create_view(view->topic(), client->slot,
                               NewView{text(view->name()), text(view->parent()), view->dtype(), view->byte_offset(),
                                       shape, items(view->strides())});
  }
  if (rc != WB_OK) return refuse(client, id, rc);
  reply(client, id, WB_OK);
}

void Dispatcher::on_get_allocation(Client *client, uint32_t id, const void *body) {
  int fd;
  uint64_t size;
  int rc = registry_.allocation_fd(static_cast<const proto::GetAllocation *>(body)->allocation(), &fd, &size);
  if (rc != WB_OK) return refuse(client, id, rc);
  reply(client, id, WB_OK, 0, size, fd);
}

void Dispatcher::on_subscribe(Client *client, uint32_t id, const void *body, std::vector<int> &fds) {
  uint32_t topic = static_cast<const proto::Subscribe *>(body)->topic();
  int rc = registry_.check_topic(topic);
  if (rc == WB_OK) rc = check_notify_pipe(fds);
  if (rc == WB_OK) rc = make_room_for_subscription(client);
  if (rc != WB_OK) return refuse(client, id, rc);
  subscribers_[topic].emplace_back(client, fds[0]);  // may run out of memory: nothing is counted before
  ++client->subscriptions;
  registry_.descriptors().hold(1);
  registry_.seg().topic(topic).notify_subscribers.fetch_add(1);
  fds.clear();  // kept
  reply(client, id, WB_OK);
}

void Dispatcher::on_published(Client *client, const void *body) {
  uint32_t topic = static_cast<const proto::Published *>(body)->topic();
  if (registry_.check_topic(topic) != WB_OK || !registry_.is_publisher(topic, client->slot)) {
    WB_LOG_LIMITED(LogLevel::kWarn, "pid %u: Published for a topic it does not publish", client->pid);
    return;
  }
  notify_subscribers(topic);
}

}  // namespace wb::broker
