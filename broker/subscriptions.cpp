// The dispatcher's notify pipes: who is subscribed to which topic, waking them when a version is published
// or the topic removed, and counting each pipe in its client's quota and the broker's descriptors. Below the
// handlers and dispatcher.cpp, which call these and are called by none of them.
#include "dispatcher.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace wb::broker {

uint32_t Dispatcher::release_publisher(uint32_t topic, uint32_t client_slot) {
  uint64_t before = registry_.seg().topic(topic).latest.load();
  uint32_t dirty = registry_.release_publisher(topic, client_slot);
  if (registry_.seg().topic(topic).latest.load() != before) notify_subscribers(topic);
  return dirty;
}

void Dispatcher::notify_subscribers(uint32_t topic) {
  auto found = subscribers_.find(topic);
  if (found == subscribers_.end()) return;
  auto &subs = found->second;
  for (auto it = subs.begin(); it != subs.end();) {
    ssize_t n = write(it->second, "v", 1);
    if (n < 0 && errno != EAGAIN) {  // the reader closed its end; a full pipe is readable already
      unsubscribe(it->first, topic, it->second);
      it = subs.erase(it);
    } else {
      ++it;
    }
  }
}

void Dispatcher::drop_subscribers(uint32_t topic) {
  notify_subscribers(topic);
  auto found = subscribers_.find(topic);
  if (found == subscribers_.end()) return;
  for (const auto &sub : found->second) unsubscribe(sub.first, topic, sub.second);
  subscribers_.erase(found);
}

void Dispatcher::unsubscribe(Client *client, uint32_t topic, int fd) {
  close(fd);
  --client->subscriptions;
  registry_.descriptors().release(1);
  registry_.seg().topic(topic).notify_subscribers.fetch_sub(1);
}

int Dispatcher::check_subscription_room(const Client &client) const {
  int rc = check_quota(Quota{.subscriptions = client.subscriptions}, Quota{.subscriptions = 1}, options_.per_client);
  if (rc == WB_OK) rc = registry_.descriptors().check(1, "keeping a notify pipe");
  return rc;
}

int Dispatcher::make_room_for_subscription(Client *client) {
  if (check_subscription_room(*client) == WB_OK) return WB_OK;
  prune_subscriptions(client);
  return check_subscription_room(*client);
}

// A pipe whose read end is closed polls POLLERR on its write end: the reader closed its notify fd (or its topic
// handle), which it does not tell the broker.
void Dispatcher::prune_subscriptions(Client *client) {
  for (auto &[topic, subs] : subscribers_) {
    for (auto it = subs.begin(); it != subs.end();) {
      pollfd pfd{it->second, 0, 0};
      if (it->first == client && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR)) {
        unsubscribe(client, topic, it->second);
        it = subs.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace wb::broker
