#include "metrics_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>
#include <unordered_map>

#include "census.hpp"
#include "clock.hpp"
#include "error.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace wb::broker {

namespace {

constexpr int kBacklog = 16;

// The broker's figures from its segment, read as the library reads them for wb_list_topics, wb_list_leases
// and wb_broker_get_info (census.hpp), so that this endpoint and `weightbus stats --prometheus` agree.
metrics::Figures read_figures(const shm::Segment &seg) {
  metrics::Figures f{WB_BROKER_INFO_INIT, 0, {}, uint64_t(realtime_ns())};
  census::broker_info(seg, &f.broker);
  std::unordered_map<std::string, size_t> by_name;
  const uint32_t topics = std::min(seg.header().topic_count.load(), seg.caps().max_topics);
  for (uint32_t slot = 0; slot < topics; ++slot) {
    const shm::Topic &t = seg.topic(slot);
    if (t.state.load(std::memory_order_acquire) != uint32_t(shm::TopicState::kLive)) continue;
    metrics::TopicFigures topic{WB_TOPIC_INFO_INIT, census::publishers_attached(seg, t), {}};
    census::topic_info(seg, slot, &topic.info);
    by_name.emplace(topic.info.name, f.topics.size());
    f.topics.push_back(std::move(topic));
  }
  for (uint32_t c = 0; c < seg.caps().max_clients; ++c) {
    if (seg.client(c).state.load(std::memory_order_acquire) != uint32_t(shm::ClientState::kLive)) continue;
    uint32_t held = 0;
    for (uint32_t i = 0; i < seg.caps().leases_per_client; ++i) {
      wb_lease_info lease = WB_LEASE_INFO_INIT;
      if (!census::lease_info(seg, c, i, &lease)) continue;
      ++held;
      if (auto found = by_name.find(lease.topic); found != by_name.end()) f.topics[found->second].tally.add(lease);
    }
    f.most_leases_held = std::max(f.most_leases_held, held);
  }
  return f;
}

// A Unix socket path left by a broker that died is taken over; a live listener's or another file is not.
int clear_unix_path(const MetricsEndpoint &e, const sockaddr_un &addr) {
  struct stat st;
  if (lstat(e.path.c_str(), &st) != 0) return errno == ENOENT ? WB_OK : fail_errno(("--metrics " + e.text()).c_str());
  if (!S_ISSOCK(st.st_mode)) {
    return fail(WB_E_INVAL, "--metrics %s: the path exists and is not a socket", e.text().c_str());
  }
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return fail_errno("socket");
  const bool listening = connect(probe, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) == 0;
  close(probe);
  if (listening) return fail(WB_E_BUSY, "--metrics %s: a process already listens there", e.text().c_str());
  unlink(e.path.c_str());
  return WB_OK;
}

// bind(2)'s failure, named after the endpoint: a taken one is WB_E_BUSY, an address this host lacks WB_E_INVAL.
int bind_failed(const MetricsEndpoint &e, int err) {
  const int code = err == EADDRINUSE ? WB_E_BUSY : err == EADDRNOTAVAIL ? WB_E_INVAL : WB_E_IO;
  return fail(code, "--metrics %s: cannot listen there: %s", e.text().c_str(), strerror(err));
}

int bind_unix(const MetricsEndpoint &e, int *fd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, e.path.c_str(), e.path.size() + 1);  // parse_metrics_endpoint checked that it fits
  if (int rc = clear_unix_path(e, addr); rc != WB_OK) return rc;
  *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (*fd < 0) return fail_errno("socket");
  const mode_t old_mask = umask(0177);  // 0600, as the control socket: the figures name every topic
  const int bound = ::bind(*fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
  umask(old_mask);
  return bound == 0 ? WB_OK : bind_failed(e, errno);
}

int bind_tcp(MetricsEndpoint &e, int *fd) {
  sockaddr_storage addr{};
  socklen_t size;
  if (e.ipv6) {
    auto *a6 = reinterpret_cast<sockaddr_in6 *>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(e.port);
    inet_pton(AF_INET6, e.host.c_str(), &a6->sin6_addr);
    size = sizeof(sockaddr_in6);
  } else {
    auto *a4 = reinterpret_cast<sockaddr_in *>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(e.port);
    inet_pton(AF_INET, e.host.c_str(), &a4->sin_addr);
    size = sizeof(sockaddr_in);
  }
  *fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (*fd < 0) return fail_errno("socket");
  const int on = 1;
  // A restarted broker takes its port back at once, not after the old connections' TIME_WAIT.
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (e.ipv6) setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (::bind(*fd, reinterpret_cast<const sockaddr *>(&addr), size) != 0) return bind_failed(e, errno);
  // Port 0: the log says which port the kernel chose.
  if (getsockname(*fd, reinterpret_cast<sockaddr *>(&addr), &size) == 0) {
    e.port = ntohs(e.ipv6 ? reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port
                          : reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
  }
  return WB_OK;
}

bool is_loopback(const MetricsEndpoint &e) {
  return e.kind != MetricsEndpoint::Kind::kTcp || e.host == "::1" || e.host.rfind("127.", 0) == 0;
}

// What a request line asks for: 0 while it has not ended, else the status of the answer (200 for
// GET /metrics). A line that is not "METHOD TARGET HTTP/1.x" is 400.
int judge_request_line(std::string_view request) {
  const size_t end = request.find('\n');
  if (end == std::string_view::npos) return 0;
  std::string_view line = request.substr(0, end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 7) != "HTTP/1." || sp1 == 0) return 400;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos || target.empty()) return 400;
  if (method != "GET") return 405;
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/metrics" ? 200 : 404;
}

bool headers_ended(std::string_view request) {
  return request.find("\r\n\r\n") != std::string_view::npos || request.find("\n\n") != std::string_view::npos;
}

const char *reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
  }
}

// The answer to anything but a GET /metrics the broker could read: why, as plain text.
const char *refusal(int status) {
  switch (status) {
    case 400: return "weightbusd: not an HTTP/1.x request line\n";
    case 404: return "weightbusd serves GET /metrics only\n";
    case 405: return "weightbusd serves GET /metrics only\n";
    case 431: return "weightbusd: the request is over 8192 bytes\n";
    default: return "weightbusd: out of memory\n";
  }
}

MetricsServer::Connection *of(uv_handle_t *h) { return static_cast<MetricsServer::Connection *>(h->data); }

}  // namespace

MetricsServer::~MetricsServer() {
  if (fd_ < 0) return;  // never bound, or libuv's since start()
  close(fd_);
  if (endpoint_.kind == MetricsEndpoint::Kind::kUnix) unlink(endpoint_.path.c_str());
}

int MetricsServer::bind(const MetricsEndpoint &endpoint) {
  endpoint_ = endpoint;
  if (endpoint_.kind == MetricsEndpoint::Kind::kOff) return WB_OK;
  int fd = -1;
  int rc = endpoint_.kind == MetricsEndpoint::Kind::kUnix ? bind_unix(endpoint_, &fd) : bind_tcp(endpoint_, &fd);
  if (rc != WB_OK) {
    if (fd >= 0) close(fd);
    return rc;
  }
  fd_ = fd;  // bound: from here the destructor closes it and removes a Unix socket's path, until start()
  if (listen(fd_, kBacklog) != 0) return fail_errno(("listen on --metrics " + endpoint_.text()).c_str());
  // Said now, before the broker says it is ready: scrapers may connect from here (they wait in the backlog
  // until the loop runs), and the port the kernel chose for tcp:0 is known.
  log(LogLevel::kInfo, "metrics: GET /metrics on %s", endpoint_.text().c_str());
  if (!is_loopback(endpoint_)) {
    log(LogLevel::kWarn, "metrics: %s is not a loopback address: whoever reaches it reads every topic's name and "
        "figures", endpoint_.text().c_str());
  }
  return WB_OK;
}

void MetricsServer::start(uv_loop_t *loop, const Registry &registry, Descriptors &descriptors) {
  if (fd_ < 0) return;
  loop_ = loop;
  registry_ = &registry;
  const bool unix_socket = endpoint_.kind == MetricsEndpoint::Kind::kUnix;
  if (unix_socket) {
    uv_pipe_init(loop, &listener_.pipe, 0);
    listener_.pipe.data = this;
  } else {
    uv_tcp_init(loop, &listener_.tcp);
    listener_.tcp.data = this;
  }
  started_ = true;  // stop() closes the handle and removes the path from here
  int rc = unix_socket ? uv_pipe_open(&listener_.pipe, fd_) : uv_tcp_open(&listener_.tcp, fd_);
  if (rc != 0) close(fd_);
  fd_ = -1;
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t *>(&listener_), kBacklog, [](uv_stream_t *server, int status) {
      if (status == 0) return static_cast<MetricsServer *>(server->data)->accept_one();
      WB_LOG_LIMITED(LogLevel::kWarn, "metrics: accept: %s", uv_strerror(status));
    });
  }
  if (rc != 0) return log(LogLevel::kError, "metrics: cannot serve %s: %s", endpoint_.text().c_str(), uv_strerror(rc));
  // Every connection served and the one libuv holds while they are all busy.
  descriptors.hold(kMaxConnections + 1);
  for (Connection &conn : pool_) conn.server = this;
}

void MetricsServer::stop() {
  if (!started_) return;
  for (Connection &conn : pool_)
    if (conn.in_use) finish(&conn);
  uv_close(reinterpret_cast<uv_handle_t *>(&listener_), nullptr);
  if (endpoint_.kind == MetricsEndpoint::Kind::kUnix) unlink(endpoint_.path.c_str());
  started_ = false;
}

void MetricsServer::accept_one() {
  Connection *conn = nullptr;
  for (Connection &c : pool_)
    if (!c.in_use) conn = &c;
  // None free: libuv keeps the connection and stops accepting until released() takes it.
  waiting_ = conn == nullptr;
  if (conn == nullptr) return;
  const bool unix_socket = endpoint_.kind == MetricsEndpoint::Kind::kUnix;
  if (unix_socket) {
    uv_pipe_init(loop_, &conn->stream.pipe, 0);
    conn->stream.pipe.data = conn;
  } else {
    uv_tcp_init(loop_, &conn->stream.tcp);
    conn->stream.tcp.data = conn;
  }
  uv_timer_init(loop_, &conn->deadline);
  conn->deadline.data = conn;
  conn->in_use = true;
  conn->closing = false;
  conn->answered = false;
  conn->sent = false;
  conn->peer_done = false;
  conn->received = 0;
  conn->open_handles = 2;
  if (uv_accept(reinterpret_cast<uv_stream_t *>(&listener_), conn->handle()) != 0) return finish(conn);
  uv_timer_start(
      &conn->deadline,
      [](uv_timer_t *t) {
        Connection *c = static_cast<Connection *>(t->data);
        c->server->finish(c);
      },
      kDeadlineMs, 0);
  uv_read_start(
      conn->handle(),
      [](uv_handle_t *h, size_t, uv_buf_t *buf) {
        Connection *c = of(h);
        // Once answered, what still comes is read into the whole buffer and dropped (see respond()).
        const size_t used = c->answered ? 0 : c->received;
        *buf = uv_buf_init(c->request + used, unsigned(sizeof c->request - used));
      },
      [](uv_stream_t *s, ssize_t nread, const uv_buf_t *) {
        Connection *c = of(reinterpret_cast<uv_handle_t *>(s));
        c->server->on_read(c, nread);
      });
}

void MetricsServer::on_read(Connection *conn, ssize_t nread) {
  // A scraper may close its sending side once it has asked (HTTP/1.0 allows it): it still reads its answer.
  if (nread == UV_EOF && conn->answered && !conn->sent) {
    conn->peer_done = true;
    return;
  }
  if (nread < 0) return finish(conn);  // it closed (or reset) the connection
  if (conn->answered || nread == 0) return;
  conn->received += size_t(nread);
  const std::string_view request(conn->request, conn->received);
  const int status = judge_request_line(request);
  if (status == 200 || status == 404 || status == 405) {
    if (headers_ended(request)) respond(conn, status);
    else if (conn->received == sizeof conn->request) respond(conn, 431);
  } else if (status == 400) {
    respond(conn, 400);
  } else if (conn->received == sizeof conn->request) {
    respond(conn, 431);
  }
}

void MetricsServer::respond(Connection *conn, int status) {
  conn->answered = true;
  std::shared_ptr<const std::string> text;
  if (status == 200 && !(text = body())) status = 503;
  const char *content = text ? text->data() : refusal(status);
  const size_t length = text ? text->size() : strlen(content);
  const int head = snprintf(conn->head, sizeof conn->head,
                            "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                            status, reason(status), text ? metrics::kContentType : "text/plain; charset=utf-8",
                            length, status == 405 ? "Allow: GET\r\n" : "");
  conn->body = std::move(text);
  const uv_buf_t parts[2] = {uv_buf_init(conn->head, unsigned(head)),
                             uv_buf_init(const_cast<char *>(content), unsigned(length))};
  conn->write.data = conn;
  const int rc = uv_write(&conn->write, conn->handle(), parts, 2, [](uv_write_t *req, int written) {
    Connection *c = static_cast<Connection *>(req->data);
    c->sent = true;
    if (written < 0 || c->peer_done) return c->server->finish(c);
    // The answer is out: a FIN says so, and the connection is closed once the scraper closes its end (or at the
    // deadline). Closing at once would reset a connection whose scraper still sends, and could lose the answer.
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, c->handle(), [](uv_shutdown_t *s, int done) {
          if (done < 0) static_cast<Connection *>(s->data)->server->finish(static_cast<Connection *>(s->data));
        }) != 0) {
      c->server->finish(c);
    }
  });
  if (rc != 0) finish(conn);
}

void MetricsServer::finish(Connection *conn) {
  if (conn->closing) return;
  conn->closing = true;
  const auto closed = [](uv_handle_t *h) { of(h)->server->released(of(h)); };
  uv_close(reinterpret_cast<uv_handle_t *>(conn->handle()), closed);
  uv_close(reinterpret_cast<uv_handle_t *>(&conn->deadline), closed);
}

void MetricsServer::released(Connection *conn) {
  if (--conn->open_handles > 0) return;
  conn->body.reset();
  conn->in_use = false;
  if (waiting_ && started_) accept_one();
}

std::shared_ptr<const std::string> MetricsServer::body() {
  const uint64_t now = uv_now(loop_);
  if (body_ && now - body_at_ms_ < kRefreshMs) return body_;
  try {
    body_ = std::make_shared<const std::string>(metrics::exposition(read_figures(registry_->seg())));
    body_at_ms_ = now;
  } catch (const std::bad_alloc &) {
    WB_LOG_LIMITED(LogLevel::kWarn, "metrics: out of memory for the figures: answered 503");
    return nullptr;
  }
  return body_;
}

}  // namespace wb::broker
