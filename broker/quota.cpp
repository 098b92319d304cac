#include "quota.hpp"

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::broker {

namespace {

int check(const char *what, const char *flag, uint64_t used, uint64_t more, uint64_t limit) {
  if (more <= limit && used <= limit - more) return WB_OK;
  return fail(WB_E_NOSPC, "per-client limit: this client has %llu %s and asks for %llu more, over its limit of %llu "
              "(see weightbusd %s)", (unsigned long long)used, what, (unsigned long long)more,
              (unsigned long long)limit, flag);
}

}  // namespace

int check_quota(const Quota &used, const Quota &more, const Quota &limit) {
  int rc = check("topics", "--max-topics-per-client", used.topics, more.topics, limit.topics);
  if (rc == WB_OK) rc = check("tensors", "--max-tensors-per-client", used.tensors, more.tensors, limit.tensors);
  if (rc == WB_OK) {
    rc = check("allocations", "--max-allocations-per-client", used.allocations, more.allocations, limit.allocations);
  }
  if (rc == WB_OK) rc = check("bytes of host memory", "--max-bytes-per-client", used.bytes, more.bytes, limit.bytes);
  if (rc == WB_OK) {
    rc = check("notify subscriptions", "--max-subscriptions-per-client", used.subscriptions, more.subscriptions,
               limit.subscriptions);
  }
  if (rc == WB_OK) rc = check("CUDA chunks", "--max-chunks-per-client", used.chunks, more.chunks, limit.chunks);
  return rc;
}

void add_quota(Quota *used, const Quota &more) {
  used->topics += more.topics;
  used->tensors += more.tensors;
  used->allocations += more.allocations;
  used->bytes += more.bytes;
  used->subscriptions += more.subscriptions;
  used->chunks += more.chunks;
}

}  // namespace wb::broker
