// Handlers of the CUDA allocation messages. The broker stores handles, fds and offsets after checking them
// against the registry; it never calls CUDA.
#include "error.hpp"
#include "flat_vectors.hpp"
#include "log.hpp"
#include "protocol_generated.h"
#include "shard_region.hpp"
#include "dispatcher.hpp"

namespace wb::broker {

void Dispatcher::on_register_cuda_allocation(Client *client, uint32_t id, const void *body) {
  auto *m = static_cast<const proto::RegisterCudaAllocation *>(body);
  if (check_publisher(client, id, m->topic()) != WB_OK) return;
  NewCudaAllocation a{m->topic(), m->kind(),       m->size(), items(m->device_uuid()), items(m->ipc_handle()),
                      m->base(),  m->chunk_count()};
  uint32_t slot = 0;
  int rc = registry_.register_cuda_allocation(a, client->slot, client->pid, &slot);
  if (rc != WB_OK) return refuse(client, id, rc);
  log(LogLevel::kDebug, "topic '%s': pid %u exported CUDA allocation %u (%s, %llu bytes)",
      registry_.seg().topic(m->topic()).name, client->pid, slot, a.chunk_count > 0 ? "VMM" : "legacy IPC",
      (unsigned long long)a.size);
  reply(client, id, WB_OK, slot, a.size);
}

void Dispatcher::on_add_allocation_chunks(Client *client, uint32_t id, const void *body, std::vector<int> &fds) {
  auto *m = static_cast<const proto::AddAllocationChunks *>(body);
  int rc = registry_.add_allocation_chunks(m->allocation(), client->slot, m->first(), items(m->sizes()), fds);
  if (rc != WB_OK) return refuse(client, id, rc);
  reply(client, id, WB_OK);
}

void Dispatcher::on_register_tensors(Client *client, uint32_t id, const void *body) {
  auto *m = static_cast<const proto::RegisterTensors *>(body);
  if (check_publisher(client, id, m->topic()) != WB_OK) return;
  if (m->tensors() == nullptr || m->tensors()->size() == 0) {
    fail(WB_E_INVAL, "RegisterTensors lists no tensors");
    return refuse(client, id, WB_E_INVAL);
  }
  std::vector<NewRegisteredTensor> tensors;
  for (const proto::RegisteredTensor *t : *m->tensors()) {
    std::vector<int64_t> shape = items(t->shape());
    if (shape.size() > WB_MAX_DIMS) {
      fail(WB_E_SHAPE, "ndim %zu is over the limit of %d", shape.size(), WB_MAX_DIMS);
      return refuse(client, id, WB_E_SHAPE);
    }
    NewRegisteredTensor tensor{text(t->name()), t->dtype(), std::move(shape), items(t->allocations()),
                               items(t->offsets()), {}};
    if (int rc = read_shard(t->shard(), &tensor.shard); rc != WB_OK) return refuse(client, id, rc);
    tensors.push_back(std::move(tensor));
  }
  int rc = registry_.register_tensors(m->topic(), client->slot, tensors);
  if (rc != WB_OK) return refuse(client, id, rc);
  reply(client, id, WB_OK);
}

void Dispatcher::on_revoke_allocation(Client *client, uint32_t id, const void *body) {
  uint32_t allocation = static_cast<const proto::RevokeAllocation *>(body)->allocation();
  uint32_t importers = 0;
  int rc = registry_.revoke_allocation(allocation, client->slot, &importers);
  if (rc != WB_OK) return refuse(client, id, rc);
  log(LogLevel::kInfo, "CUDA allocation %u revoked by pid %u (%u importer(s) still map it)", allocation, client->pid,
      importers);
  reply(client, id, WB_OK, importers);
}

void Dispatcher::on_import_allocation(Client *client, uint32_t id, const void *body) {
  auto *m = static_cast<const proto::ImportAllocation *>(body);
  int fd;
  uint64_t offset, size;
  int rc = registry_.import_chunk(m->allocation(), m->chunk(), &fd, &offset, &size);
  if (rc != WB_OK) return refuse(client, id, rc);
  if (client->imported.insert(m->allocation()).second) registry_.add_importer(m->allocation());
  reply(client, id, WB_OK, offset, size, fd);
}

void Dispatcher::on_release_allocation(Client *client, uint32_t id, const void *body) {
  uint32_t allocation = static_cast<const proto::ReleaseAllocation *>(body)->allocation();
  if (client->imported.erase(allocation) == 0) {
    fail(WB_E_NOT_FOUND, "this client has not imported CUDA allocation %u", allocation);
    return refuse(client, id, WB_E_NOT_FOUND);
  }
  registry_.drop_importer(allocation);
  reply(client, id, WB_OK);
}

void Dispatcher::drop_cuda(Client *client) {
  for (uint32_t allocation : client->imported) registry_.drop_importer(allocation);
  client->imported.clear();
  uint32_t died = registry_.exporter_gone(client->slot);
  if (died > 0) log(LogLevel::kInfo, "pid %u: %u legacy-IPC CUDA allocation(s) died with it", client->pid, died);
}

}  // namespace wb::broker
