// weightbus watch: one line per version of a topic as it is published.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "output_json.hpp"

namespace wbcli {
namespace {

constexpr size_t kMetadataChars = 200;       // printed characters of metadata (text) or hex digits (binary)
constexpr size_t kWholeMetadata = SIZE_MAX;  // --json prints all of it
constexpr int64_t kAcquireTimeoutMs = 5000;  // an R = 1 acquire waits for an update in progress; bound it
constexpr uint64_t kMaxBacklog = 64;         // older versions than this behind the latest are reported as skipped

struct Metadata {
  std::string text;  // UTF-8 text, or hex digits
  bool hex = false;
  bool truncated = false;
  uint32_t bytes = 0;
};

// Text when the bytes are UTF-8 without control characters (tab and line breaks allowed), hex otherwise.
bool printable(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const int32_t cp = next_code_point(s, i);
    if (cp < 0 || cp == 0x7f || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')) return false;
  }
  return true;
}

// The metadata as text or hex, cut at limit characters (hex digits).
Metadata render_metadata(const void *data, uint32_t size, size_t limit) {
  const std::string_view bytes(static_cast<const char *>(data), data ? size : 0);
  Metadata m;
  m.bytes = static_cast<uint32_t>(bytes.size());
  if (printable(bytes)) {
    size_t i = 0, chars = 0;
    while (i < bytes.size() && chars++ < limit) next_code_point(bytes, i);
    m.text = bytes.substr(0, i);
    m.truncated = i < bytes.size();
    return m;
  }
  static const char digits[] = "0123456789abcdef";
  m.hex = true;
  const size_t shown = std::min(bytes.size(), limit / 2);
  for (size_t k = 0; k < shown; ++k) {
    m.text += digits[static_cast<unsigned char>(bytes[k]) >> 4];
    m.text += digits[static_cast<unsigned char>(bytes[k]) & 15];
  }
  m.truncated = shown < bytes.size();
  return m;
}

// On one text line, line breaks inside the metadata (pretty-printed JSON, say) become spaces.
std::string one_line(const Metadata &m) {
  if (m.bytes == 0) return "(no metadata)";
  std::string s = m.hex ? "hex:" + m.text : m.text;
  for (char &c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (m.truncated) s += "... (" + std::to_string(m.bytes) + " bytes)";
  return s;
}

struct Watch {
  const GlobalOptions &g;
  std::string name;
  const weightbus::Topic &topic;
};

void print_version(const Watch &w, uint64_t version, uint64_t timestamp_ns, const std::string &metadata) {
  if (!w.g.json) {
    const Metadata m = render_metadata(metadata.data(), uint32_t(metadata.size()), kMetadataChars);
    return out_line("version " + std::to_string(version) + "  " + format_time(timestamp_ns) + "  " + one_line(m));
  }
  const Metadata m = render_metadata(metadata.data(), uint32_t(metadata.size()), kWholeMetadata);
  // Metadata that is JSON (what `load` publishes, a trainer's {"step": ...}) is also given as that JSON value.
  const Json parsed = m.hex ? Json() : Json::parse(metadata, nullptr, false);
  out_json(Json::object({{"topic", w.name},
                         {"version", version},
                         {"timestamp_ns", timestamp_ns},
                         {"time", format_time(timestamp_ns)},
                         {"metadata", m.text},
                         {"metadata_encoding", m.hex ? "hex" : "utf-8"},
                         {"metadata_bytes", m.bytes},
                         {"metadata_truncated", m.truncated},
                         {"metadata_json", parsed.is_discarded() ? Json() : parsed}}));
}

// An R = 1 publisher died while writing in place: the bytes are half-new until the next publish. Not an error for
// a watcher, which goes on waiting for that publish.
void print_dirty(const Watch &w, uint64_t version) {
  if (w.g.json) return out_json(Json::object({{"topic", w.name}, {"version", version}, {"dirty", true}}));
  out_line("version " + std::to_string(version) + "  unreadable: the topic is dirty (its publisher died mid-update)");
}

// Versions that were published but cannot be read any more, because a newer one replaced them before we got to
// them, are reported as one range, printed before the next version that could be read so lines stay in order.
struct Skipped {
  uint64_t first = 0;  // 0: none pending
  uint64_t last = 0;
  void add(uint64_t v) {
    if (first == 0) first = v;
    last = v;
  }
  void flush(const Watch &w) {
    if (first == 0) return;
    const char *why = "superseded before it could be read";
    if (w.g.json)
      out_json(Json::object({{"topic", w.name}, {"skipped_from", first}, {"skipped_to", last}, {"reason", why}}));
    else if (first == last)
      out_line("version " + std::to_string(first) + "  skipped: " + why);
    else
      out_line("versions " + std::to_string(first) + ".." + std::to_string(last) + "  skipped: " + why);
    first = last = 0;
  }
};

// Prints one version, or adds it to skipped when it is gone.
void show(const Watch &w, uint64_t version, Skipped &skipped) {
  weightbus::Snapshot snapshot;
  try {
    snapshot = w.topic.acquire(version, kAcquireTimeoutMs);
  } catch (const weightbus::Error &e) {
    if (e.code() == WB_E_EXPIRED || e.code() == WB_E_NOT_FOUND) return skipped.add(version);
    skipped.flush(w);
    if (e.code() == WB_E_DIRTY) return print_dirty(w, version);
    throw Failure("read version " + std::to_string(version) + " of topic '" + w.name + "'", e);
  }
  skipped.flush(w);
  const std::string what = "read the metadata of version " + std::to_string(version);
  const std::string metadata = doing(what, [&] { return snapshot.metadata(); });
  const uint64_t timestamp_ns = doing(what, [&] { return snapshot.timestamp_ns(); });
  print_version(w, version, timestamp_ns, metadata);
}

// Goes through versions first..last, at most limit of them. Returns how many it went through.
uint64_t show_range(const Watch &w, uint64_t first, uint64_t last, uint64_t limit) {
  const uint64_t end = std::min(last, first + limit - 1);
  Skipped skipped;
  for (uint64_t v = first; v <= end; ++v) {
    if (v + kMaxBacklog > last)
      show(w, v, skipped);  // far behind the latest: not worth an acquire each
    else
      skipped.add(v);
  }
  skipped.flush(w);
  return end - first + 1;
}

// The next version after after; nothing when timeout_ms passed without one.
std::optional<uint64_t> wait_next(const Watch &w, uint64_t after, int64_t timeout_ms) {
  try {
    return w.topic.wait(after, timeout_ms);
  } catch (const weightbus::Error &e) {
    if (e.code() == WB_E_TIMEOUT) return std::nullopt;
    throw Failure("watch '" + w.name + "'", e);  // the library's message says what went away
  }
}

int run_watch(const GlobalOptions &g, Args &args) {
  const uint64_t count = static_cast<uint64_t>(args.integer("--count", 1, INT64_MAX).value_or(0));  // 0: forever
  const int64_t timeout_ms = args.integer("--timeout-ms", -1, INT64_MAX).value_or(-1);
  const auto since = args.integer("--since", 0, static_cast<int64_t>(WB_VERSION_MAX));
  const std::string name = args.positionals(1, 1, "TOPIC").front();
  weightbus::Client client = attach(g, "weightbus watch");
  const weightbus::Topic topic = open_topic(client, name);
  const Watch w{g, name, topic};
  uint64_t after = 0;
  if (since)
    after = static_cast<uint64_t>(*since);
  else
    after = doing("read the latest version of topic '" + name + "'", [&] { return topic.latest(); });
  if (!g.json)
    err_line("watching topic '" + name + "' for versions after " + std::to_string(after) + " (Ctrl-C to stop)");
  for (uint64_t seen = 0; count == 0 || seen < count;) {
    const std::optional<uint64_t> latest = wait_next(w, after, timeout_ms);
    if (!latest) {
      err_line("weightbus: watch '" + name + "': no version after " + std::to_string(after) + " within " +
               std::to_string(timeout_ms) + " ms");
      return kExitTimeout;
    }
    seen += show_range(w, after + 1, *latest, count == 0 ? UINT64_MAX - after : count - seen);
    after = *latest;
  }
  return 0;
}

}  // namespace

const Command kWatchCommand = {
    "watch",
    "print each new version of a topic as it is published",
    "weightbus watch TOPIC [--count N] [--timeout-ms T] [--since V] [--json]",
    R"HELP(Wait for new versions of TOPIC and print a line for each: version, publish time and its metadata (as
text when it is printable UTF-8, else as hex; cut at 200 characters). Versions that were replaced before they
could be read are reported as skipped. Runs until interrupted, or until N versions went by.
Exits 0 after N versions, 3 when the timeout passes without a new version, 1 when the broker goes away or
the topic does not exist.

options:
  --count N        stop after N versions
  --timeout-ms T   give up (exit 3) when no new version comes within T ms; default: wait forever
  --since V        start after version V instead of the latest (--since 0: every version still kept)
  --json           one JSON object per line: {"topic", "version", "timestamp_ns", "time", "metadata",
                   "metadata_encoding" ("utf-8" or "hex"), "metadata_bytes", "metadata_truncated",
                   "metadata_json"}: the whole metadata, never cut (metadata_truncated is false), and when it
                   is JSON text, that JSON value as metadata_json (else null);
                   skipped versions: {"topic", "skipped_from", "skipped_to", "reason"};
                   a version unreadable because the topic is dirty: {"topic", "version", "dirty": true}

examples:
  weightbus watch policy
  weightbus watch policy --count 1 --timeout-ms 60000 --json
)HELP",
    "count: timeout-ms: since:",
    run_watch,
};

}  // namespace wbcli
