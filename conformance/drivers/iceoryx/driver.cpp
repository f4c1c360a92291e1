// memlink conformance driver for Eclipse iceoryx 2.0 (publish/subscribe
// through RouDi's shared memory).
//
// Speaks conformance/DRIVER.md, protocol 2: one JSON request per line on
// stdin, one JSON response per line on stdout. The suite starts one process
// per role; this one becomes the daemon on `create` and a client on
// `connect`. README.md in this folder explains the mapping: six topics per
// segment path (direction x priority), subscriber queues as the rings, a
// flock'ed file for the daemon's liveness, and what iceoryx cannot promise.
//
// Usage: memlink-driver-iceoryx [--discard] [--history N]
//   --discard    iceoryx's default queue policy: a full subscriber queue drops
//                its oldest chunk (write is never Full) instead of blocking
//                the publisher (the default here: write answers Full).
//   --history N  publishers keep their last N chunks (<= 16) for subscribers
//                that come later, and subscribers ask for them.
//
// RouDi (iox-roudi) must run; the driver checks its socket before it starts
// iceoryx's runtime (which would otherwise wait for RouDi for 60 s and then
// abort) and answers IoError when it is not there.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_hoofs/platform/platform_settings.hpp"
#include "iceoryx_posh/iceoryx_posh_types.hpp"
#include "iceoryx_posh/internal/popo/ports/publisher_port_data.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "iceoryx_versions.hpp"

#ifndef MEMLINK_IOX_DRIVER_VERSION
#define MEMLINK_IOX_DRIVER_VERSION "1.0.0"
#endif

using json = nlohmann::ordered_json;  // ordered: responses read "id", "ok", then results
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr int kProtocol = 2;
constexpr std::uint32_t kMaxSlot = 4096;
// iceoryx 2.0's largest subscriber queue (MAX_SUBSCRIBER_QUEUE_CAPACITY).
constexpr std::uint64_t kMaxQueue = iox::MAX_SUBSCRIBER_QUEUE_CAPACITY;
constexpr std::uint64_t kMaxHistory = iox::MAX_PUBLISHER_HISTORY;
// How long create/connect wait for RouDi to connect the new ports (its
// discovery loop runs every 100 ms).
constexpr auto kConnectPatience = std::chrono::seconds(5);

// ---------------------------------------------------------------- errors --

struct Failure {
  std::string code, detail;
};

[[noreturn]] void fail(std::string code, std::string detail) { throw Failure{std::move(code), std::move(detail)}; }

// ----------------------------------------------------------------- bytes --

std::string to_hex(const std::uint8_t* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

Bytes from_hex(const std::string& s) {
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail("InvalidArgument", "data is not hex: '" + s.substr(0, 64) + "'");
  };
  if (s.size() % 2 != 0) fail("InvalidArgument", "data has an odd number of hex digits");
  Bytes b(s.size() / 2);
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<std::uint8_t>(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
  return b;
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

// ------------------------------------------------------- request fields --

std::uint64_t uint_field(const json& req, const char* name) {
  auto it = req.find(name);
  if (it == req.end() || !it->is_number_unsigned())
    fail("InvalidArgument", std::string("field '") + name + "' must be a non-negative integer");
  return it->get<std::uint64_t>();
}

std::uint64_t uint_field_or(const json& req, const char* name, std::uint64_t fallback) {
  return req.contains(name) ? uint_field(req, name) : fallback;
}

std::string string_field(const json& req, const char* name) {
  auto it = req.find(name);
  if (it == req.end() || !it->is_string())
    fail("InvalidArgument", std::string("field '") + name + "' must be a string");
  return it->get<std::string>();
}

int priority_field(const json& req) {
  const std::uint64_t p = uint_field(req, "priority");
  if (p > 2) fail("InvalidArgument", "priority " + std::to_string(p) + " is not 0, 1 or 2");
  return static_cast<int>(p);
}

// ------------------------------------------------------ names and files --

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

std::string hash_of(const std::string& segment) {
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a64(segment)));
  return hash;
}

// One topic per ring: service "memlink", instance = FNV-1a 64 of the path,
// event "c2d-0" .. "d2c-2".
iox::capro::ServiceDescription topic(const std::string& segment, const std::string& event) {
  return {iox::capro::IdString_t(iox::cxx::TruncateToCapacity, "memlink"),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, hash_of(segment).c_str()),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, event.c_str())};
}

iox::capro::ServiceDescription topic(const std::string& segment, const char* direction, int priority) {
  return topic(segment, std::string(direction) + "-" + std::to_string(priority));
}

// The daemon's seventh topic, "d2c-ctl": it publishes one empty chunk there
// when it shuts down. iceoryx 2.0 wakes no subscriber when a publisher stops
// offering; this chunk wakes the reading client asleep in its WaitSet
// (SPEC T-SHUTDOWN: shutdown wakes every sleeper).
constexpr const char* kControl = "d2c-ctl";

std::string topic_name(const std::string& segment, const char* direction, int priority) {
  return "memlink/" + hash_of(segment) + "/" + direction + "-" + std::to_string(priority);
}

// Side files of a segment PATH:
//   PATH.iox-lock    flock'ed (exclusive) by the live daemon for its whole life
//   PATH.iox-daemon  "pid epoch version capacity slot_size instance shutdown",
//                    written through a temporary file and rename
//   PATH.iox-d2c     flock'ed by the one client that reads d2c (SPEC R-ROLES)
std::string lock_path(const std::string& s) { return s + ".iox-lock"; }
std::string state_path(const std::string& s) { return s + ".iox-daemon"; }
std::string reader_path(const std::string& s) { return s + ".iox-d2c"; }

struct State {
  long pid = 0;
  std::uint64_t epoch = 0;
  std::uint64_t version = 0;
  std::uint64_t capacity = 0;
  std::uint64_t slot_size = 0;
  std::uint64_t instance = 0;
  int shutdown = 0;
};

std::optional<State> read_state(const std::string& segment) {
  std::ifstream in(state_path(segment));
  State s;
  if (!(in >> s.pid >> s.epoch >> s.version >> s.capacity >> s.slot_size >> std::hex >> s.instance >> std::dec >>
        s.shutdown))
    return std::nullopt;
  return s;
}

void write_state(const std::string& segment, const State& s) {
  const std::string path = state_path(segment);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << s.pid << ' ' << s.epoch << ' ' << s.version << ' ' << s.capacity << ' ' << s.slot_size << ' ' << std::hex
        << s.instance << std::dec << ' ' << s.shutdown << '\n';
    if (!out.flush()) fail("IoError", "cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("IoError", "cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
}

// An exclusive flock on `path` (created 0600 if missing), re-checked against
// the path's inode (cleanup may unlink the file between open and flock): the
// descriptor, -1 if another open file holds the lock. `wait_ms`: keep trying
// that long (a liveness probe holds a shared lock for a few microseconds).
int lock_exclusive(const std::string& path, int wait_ms) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      fail(errno == EACCES ? "PermissionDenied" : "IoError", "cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      struct stat a {
      }, b{};
      if (::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return fd;
      ::close(fd);  // the name now names another file: lock that one
      continue;
    }
    const int err = errno;
    ::close(fd);
    if (err != EWOULDBLOCK) fail("IoError", "flock " + path + ": " + std::strerror(err));
    if (std::chrono::steady_clock::now() >= give_up) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Whether some process holds `path` locked (a live daemon, a live reader).
// A missing file is no holder. The probe is a shared lock, at once released.
bool held(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the probe's lock, if it got one
  return locked;
}

std::uint64_t random_u64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// --------------------------------------------------------------- RouDi --

// iceoryx 2.0 applications reach RouDi through the UNIX datagram socket
// IOX_UDS_SOCKET_PATH_PREFIX + "roudi" (/tmp/roudi). A socket file nobody
// listens on (RouDi killed) refuses the connect.
std::string roudi_socket() {
  return std::string(iox::platform::IOX_UDS_SOCKET_PATH_PREFIX) + iox::roudi::IPC_CHANNEL_ROUDI_NAME;
}

bool roudi_running(std::string& why) {
  const std::string path = roudi_socket();
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EPROTOTYPE;
  if (!ok) why = "connect " + path + ": " + std::strerror(errno);
  ::close(fd);
  return ok;
}

void need_roudi() {
  std::string why;
  if (!roudi_running(why)) fail("IoError", "RouDi is not running: start iox-roudi (" + why + ")");
}

// The identity (device, inode) of RouDi's socket file: a restarted RouDi
// unlinks the old one and binds a new one.
std::pair<dev_t, ino_t> roudi_identity() {
  struct stat st {};
  if (::stat(roudi_socket().c_str(), &st) != 0) return {0, 0};
  return {st.st_dev, st.st_ino};
}

// PoshRuntime::initRuntime may run once per process: the name it registers
// with RouDi is this process's for good, whatever endpoints it serves. A
// RouDi started after that does not know the process, and iceoryx aborts it
// at its next port request (POSH__RUNTIME_ROUDI_REQUEST_*_INVALID_RESPONSE):
// such a process answers IoError instead.
void ensure_runtime() {
  static bool done = false;
  static std::pair<dev_t, ino_t> registered{0, 0};
  need_roudi();
  if (done) {
    if (roudi_identity() != registered)
      fail("IoError", "RouDi was restarted after this process registered with it (" + roudi_socket() +
                          " is a new socket); iceoryx cannot register a process twice: start a new driver process");
    return;
  }
  registered = roudi_identity();
  // Warnings and errors only, on stderr (file descriptor 1 is stderr too).
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                           iox::log::LogLevelOutput::kHideLogLevel);
  const std::string name = "memlink-driver-iceoryx-" + std::to_string(::getpid());
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
  done = true;
}

// ------------------------------------------------------------ publisher --

// BasePort::getMembers is protected; a pointer to it, taken inside a class
// derived from BasePort, may be applied to any port.
struct PortMembers : iox::popo::BasePort {
  static iox::popo::BasePortData* of(iox::popo::BasePort& port) {
    auto f = static_cast<iox::popo::BasePortData* (iox::popo::BasePort::*)() noexcept>(&PortMembers::getMembers);
    return (port.*f)();
  }
};

// An untyped publisher that can tell whether one of its subscribers' queues
// is full. iceoryx's publish with WAIT_FOR_CONSUMER then spins until the
// subscriber takes a chunk; `write` asks first and answers Full instead.
class Publisher : public iox::popo::UntypedPublisher {
 public:
  using iox::popo::UntypedPublisher::UntypedPublisher;

  struct Fill {
    std::uint64_t queues = 0;  // subscribers connected
    bool full = false;         // one of them holds `capacity` chunks
    std::uint64_t size = 0, capacity = 0;
  };

  Fill fill() {
    Fill f;
    auto* data = static_cast<iox::popo::PublisherPortData*>(PortMembers::of(port()));
    auto& distributor = data->m_chunkSenderData;
    using Distributor = std::remove_reference_t<decltype(distributor)>;
    typename Distributor::LockGuard_t lock(distributor);
    for (auto& q : distributor.m_queues) {
      auto* queue = q.get();
      if (queue == nullptr) continue;
      ++f.queues;
      const std::uint64_t size = queue->m_queue.size(), capacity = queue->m_queue.capacity();
      if (size >= capacity) {
        f.full = true;
        f.size = size;
        f.capacity = capacity;
      }
    }
    return f;
  }
};

// --------------------------------------------- workload (D-RECORD etc.) --

struct Record {
  char type = 'I';
  std::uint8_t stream = 0;
  std::uint8_t priority = 0;
  std::uint8_t reserved = 0;
  std::uint32_t writer = 0;
  std::uint64_t n = 0;
  std::uint64_t t_ns = 0;
  std::uint64_t position = 0;  // iceoryx has no ring positions: 0 (Serving: 0 fresh, 1 takeover)
  std::uint64_t epoch = 0;
  std::uint64_t sequence = 0;  // no sequence numbers: 0
};
static_assert(sizeof(Record) == 48, "D-RECORD is 48 bytes");

struct MessageId {
  std::uint8_t stream = 0;
  std::uint32_t writer = 0;
  std::uint8_t priority = 0;
  std::uint64_t n = 0;
};

Record record(char type, const MessageId& id) {
  Record r;
  r.type = type;
  r.stream = id.stream;
  r.priority = id.priority;
  r.writer = id.writer;
  r.n = id.n;
  r.t_ns = monotonic_ns();
  return r;
}

void put(int fd, const Record& r) {
  if (::write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r))
    std::fprintf(stderr, "iceoryx driver: cannot append a record: %s\n", std::strerror(errno));
}

constexpr std::size_t kMinPayload = 24;

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

std::uint32_t fnv1a32(const std::uint8_t* p, std::size_t n) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

Bytes encode_payload(const MessageId& id, std::size_t length) {
  length = std::max(length, kMinPayload);
  Bytes out(length);
  out[0] = id.stream;
  out[1] = id.priority;
  std::memcpy(out.data() + 2, &id.writer, 4);
  std::memcpy(out.data() + 6, &id.n, 8);
  std::uint64_t x = mix(id.n * 31 + id.writer + (std::uint64_t(id.priority) << 40));
  for (std::size_t i = 14; i + 4 < length; ++i) {
    x = mix(x + i);
    out[i] = static_cast<std::uint8_t>(x);
  }
  const std::uint32_t h = fnv1a32(out.data(), length - 4);
  std::memcpy(out.data() + length - 4, &h, 4);
  return out;
}

bool decode_payload(const Bytes& payload, MessageId& id) {
  if (payload.size() < kMinPayload) return false;
  std::uint32_t h = 0;
  std::memcpy(&h, payload.data() + payload.size() - 4, 4);
  if (h != fnv1a32(payload.data(), payload.size() - 4)) return false;
  if (payload[0] > 1) return false;
  id.stream = payload[0];
  id.priority = payload[1];
  std::memcpy(&id.writer, payload.data() + 2, 4);
  std::memcpy(&id.n, payload.data() + 6, 8);
  return encode_payload(id, payload.size()) == payload;
}

volatile std::sig_atomic_t g_term = 0;
extern "C" void on_sigterm(int) { g_term = 1; }

void pause_ns(std::uint64_t ns) {
  if (ns == 0) return;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000ULL), static_cast<long>(ns % 1'000'000'000ULL)};
  ::nanosleep(&ts, nullptr);
}

struct Workload {
  std::string role;
  int fd = -1;
  std::uint32_t writer = 0;
  std::uint64_t rate = 0;
  std::uint64_t seed = 0;
  std::size_t slot_size = 0;
};

// ---------------------------------------------------------------- driver --

struct Options {
  bool discard = false;       // --discard: DISCARD_OLDEST_DATA on both sides
  std::uint64_t history = 0;  // --history N
};

struct Message {
  int priority = 0;
  Bytes data;
};

class Driver {
 public:
  explicit Driver(Options o) : o_(o) {}
  ~Driver() { end_endpoint(); }
  json serve(const std::string& line);
  bool workload_pending() const { return workload_.has_value(); }
  [[noreturn]] void run_workload();

 private:
  enum class Role { None, Daemon, Client };

  json dispatch(const json& req);
  json hello(const json& req);
  json create(const json& req);
  json connect(const json& req);
  json disconnect();
  json reset();
  json write(const json& req, bool blocking);
  json read();
  json wait(const json& req);
  json shutdown();
  json cleanup(const json& req);
  json workload(const json& req);

  const char* out_dir() const { return role_ == Role::Daemon ? "d2c" : "c2d"; }
  const char* in_dir() const { return role_ == Role::Daemon ? "c2d" : "d2c"; }
  iox::popo::PublisherOptions publisher_options() const;
  iox::popo::SubscriberOptions subscriber_options(std::uint64_t capacity) const;
  void make_publishers(const char* direction);
  void make_subscribers(const char* direction, std::uint64_t capacity);
  void drop_subscribers();
  bool become_reader(int wait_ms);
  void drop_reader();
  void end_endpoint();
  void need_endpoint() const;
  void check_writable() const;
  bool peer_gone(std::string& why) const;
  void wait_for_roudi(const char* what, const std::function<bool()>& done) const;
  std::optional<Message> take();
  bool publish(int priority, const Bytes& data, std::string& full);
  bool any_data() const;
  void drain_control();

  void writer_loop(const Workload& w);
  void consumer_loop(const Workload& w);

  const Options o_;
  Role role_ = Role::None;
  std::string segment_;
  std::uint64_t slot_size_ = 0;
  std::uint64_t capacity_ = 0;
  std::uint64_t instance_ = 0;
  std::chrono::milliseconds slice_{100};
  std::array<std::optional<Publisher>, 3> pub_;
  std::array<std::optional<iox::popo::UntypedSubscriber>, 3> sub_;
  std::optional<iox::popo::WaitSet<>> waitset_;
  std::optional<Publisher> ctl_pub_;                     // daemon: d2c-ctl
  std::optional<iox::popo::UntypedSubscriber> ctl_sub_;  // reading client: d2c-ctl
  int lock_fd_ = -1;                                     // daemon: PATH.iox-lock
  int reader_fd_ = -1;                                   // client reading d2c: PATH.iox-d2c
  // Daemon only.
  std::uint64_t epoch_ = 0;
  bool takeover_ = false;
  bool shut_down_ = false;
  std::optional<Workload> workload_;
};

json Driver::serve(const std::string& line) {
  json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  json res = {{"id", -1}, {"ok", false}};
  auto failed = [&](const std::string& code, const std::string& detail) {
    res["error"] = code;
    res["detail"] = detail.empty() ? code : detail;
    return res;
  };
  if (req.is_discarded() || !req.is_object())
    return failed("InvalidArgument", "not a JSON object: " + line.substr(0, 200));
  if (auto id = req.find("id"); id != req.end() && id->is_number_integer())
    res["id"] = *id;
  else
    return failed("InvalidArgument", "request without an integer \"id\"");
  try {
    json out = dispatch(req);
    res["ok"] = true;
    for (auto& [k, v] : out.items()) res[k] = v;
    return res;
  } catch (const Failure& f) {
    return failed(f.code, f.detail);
  } catch (const json::exception& e) {
    return failed("InvalidArgument", e.what());
  } catch (const std::exception& e) {
    return failed("IoError", e.what());
  }
}

json Driver::dispatch(const json& req) {
  const std::string op = string_field(req, "op");
  if (op == "hello") return hello(req);
  if (op == "create") return create(req);
  if (op == "connect") return connect(req);
  if (op == "disconnect") return disconnect();
  if (op == "reset") return reset();
  if (op == "write") return write(req, false);
  if (op == "write_blocking") return write(req, true);
  if (op == "read") return read();
  if (op == "wait") return wait(req);
  if (op == "shutdown") return shutdown();
  if (op == "workload") return workload(req);
  if (op == "cleanup") return cleanup(req);
  if (op == "peek")
    fail("Unsupported", "an iceoryx subscriber cannot look at a chunk without taking it from its queue (no peek)");
  if (op == "take" || op == "finish")
    fail("Unsupported", "a chunk a killed subscriber held is released by RouDi, never delivered again (no two_step)");
  fail("Unsupported", "unknown op '" + op + "'");
}

json Driver::hello(const json& req) {
  const std::uint64_t protocol = uint_field(req, "protocol");
  if (protocol != kProtocol)
    fail("ProtocolMismatch",
         "driver speaks protocol " + std::to_string(kProtocol) + " only, suite asked for " + std::to_string(protocol));
  json caps = {"priorities",     "daemon_writes", "write_blocking", "wait",
               "crash_recovery", "cleanup",       "workload",       "reset"};
  return {{"protocol", kProtocol},
          {"name", "iceoryx"},
          {"version", std::string(MEMLINK_IOX_DRIVER_VERSION) + " (iceoryx " + ICEORYX_LATEST_RELEASE_VERSION + ", " +
                          (o_.discard ? "discard" : "block") + ", history " + std::to_string(o_.history) + ")"},
          {"capabilities", caps},
          {"limits", {{"slot_size", {{"min", 1}, {"max", kMaxSlot}}}}}};
}

iox::popo::PublisherOptions Driver::publisher_options() const {
  iox::popo::PublisherOptions p;
  p.historyCapacity = o_.history;
  p.subscriberTooSlowPolicy = o_.discard ? iox::popo::ConsumerTooSlowPolicy::DISCARD_OLDEST_DATA
                                         : iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
  return p;
}

iox::popo::SubscriberOptions Driver::subscriber_options(std::uint64_t capacity) const {
  iox::popo::SubscriberOptions s;
  s.queueCapacity = capacity;
  s.historyRequest = o_.history;
  s.queueFullPolicy =
      o_.discard ? iox::popo::QueueFullPolicy::DISCARD_OLDEST_DATA : iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
  return s;
}

void Driver::make_publishers(const char* direction) {
  for (int p = 0; p < 3; ++p) pub_[p].emplace(topic(segment_, direction, p), publisher_options());
}

void Driver::make_subscribers(const char* direction, std::uint64_t capacity) {
  for (int p = 0; p < 3; ++p) sub_[p].emplace(topic(segment_, direction, p), subscriber_options(capacity));
  waitset_.emplace();
  for (int p = 0; p < 3; ++p)
    if (waitset_->attachState(*sub_[p], iox::popo::SubscriberState::HAS_DATA).has_error())
      fail("IoError", "iceoryx: cannot attach subscriber " + topic_name(segment_, direction, p) + " to a WaitSet");
  if (std::string(direction) == "d2c") {
    iox::popo::SubscriberOptions o;
    o.queueCapacity = 1;
    o.queueFullPolicy = iox::popo::QueueFullPolicy::DISCARD_OLDEST_DATA;  // never holds the daemon up
    ctl_sub_.emplace(topic(segment_, kControl), o);
    if (waitset_->attachState(*ctl_sub_, iox::popo::SubscriberState::HAS_DATA).has_error())
      fail("IoError",
           "iceoryx: cannot attach subscriber memlink/" + hash_of(segment_) + "/" + kControl + " to a WaitSet");
  }
}

void Driver::drop_subscribers() {
  waitset_.reset();
  for (auto& s : sub_) s.reset();
  ctl_sub_.reset();
}

void Driver::drain_control() {
  if (!ctl_sub_) return;
  for (auto got = ctl_sub_->take(); !got.has_error(); got = ctl_sub_->take()) ctl_sub_->release(got.value());
}

// Waits (bounded) until RouDi has done what `done` checks; RouDi connects
// ports in its discovery loop, every 100 ms.
void Driver::wait_for_roudi(const char* what, const std::function<bool()>& done) const {
  const auto give_up = std::chrono::steady_clock::now() + kConnectPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up)
      fail("IoError", std::string("RouDi did not ") + what + " within 5 s (is iox-roudi still running?)");
    need_roudi();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A client reads d2c only while it holds PATH.iox-d2c (SPEC R-ROLES: one
// reading client at a time); only then does it subscribe, so that a client
// that never reads holds no queue the daemon's publisher could fill.
bool Driver::become_reader(int wait_ms) {
  if (reader_fd_ >= 0) return true;
  const int fd = lock_exclusive(reader_path(segment_), wait_ms);
  if (fd < 0) return false;
  reader_fd_ = fd;
  make_subscribers("d2c", capacity_);
  // RouDi has handled the subscription once it is SUBSCRIBED (a daemon's
  // publisher offers d2c) or WAIT_FOR_OFFER (none does).
  wait_for_roudi("subscribe this client to d2c", [&] {
    for (auto& s : sub_)
      if (s->getSubscriptionState() == iox::SubscribeState::SUBSCRIBE_REQUESTED) return false;
    return ctl_sub_->getSubscriptionState() != iox::SubscribeState::SUBSCRIBE_REQUESTED;
  });
  return true;
}

void Driver::drop_reader() {
  drop_subscribers();
  if (reader_fd_ >= 0) ::close(reader_fd_);
  reader_fd_ = -1;
}

void Driver::end_endpoint() {
  drop_subscribers();
  for (auto& p : pub_) p.reset();
  ctl_pub_.reset();
  if (reader_fd_ >= 0) ::close(reader_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
  reader_fd_ = lock_fd_ = -1;
  role_ = Role::None;
  segment_.clear();
  shut_down_ = takeover_ = false;
  epoch_ = instance_ = capacity_ = slot_size_ = 0;
}

json Driver::create(const json& req) {
  if (role_ != Role::None) fail("InvalidState", "this process already serves or uses " + segment_);
  const std::string segment = string_field(req, "segment");
  const std::uint64_t segment_size = uint_field(req, "segment_size");
  const std::uint64_t slot_size = uint_field(req, "slot_size");
  const std::uint64_t version = uint_field(req, "protocol_version");
  slice_ = std::chrono::milliseconds(std::max<std::uint64_t>(1, uint_field_or(req, "sleep_slice_ms", 100)));
  if (segment.empty()) fail("InvalidArgument", "create needs a segment path");
  if (slot_size < 1 || slot_size > kMaxSlot)
    fail("InvalidArgument", "slot_size " + std::to_string(slot_size) + " is outside 1.." + std::to_string(kMaxSlot));
  // Roughly the SPEC's geometry: a slot costs slot_size plus a header, and
  // the segment is split over 2 directions x 3 priorities; a subscriber
  // queue holds at most 256 chunks.
  const std::uint64_t capacity = std::clamp<std::uint64_t>(segment_size / (slot_size + 64) / 6, 1, kMaxQueue);
  ensure_runtime();

  const int fd = lock_exclusive(lock_path(segment), 20);
  if (fd < 0) {
    const auto live = read_state(segment);
    fail("AlreadyExists",
         "a live daemon" +
             (live ? " (pid " + std::to_string(live->pid) + ", epoch " + std::to_string(live->epoch) + ")"
                   : std::string()) +
             " holds " + lock_path(segment));
  }
  const auto previous = read_state(segment);
  role_ = Role::Daemon;
  segment_ = segment;
  lock_fd_ = fd;
  slot_size_ = slot_size;
  capacity_ = capacity;
  takeover_ = previous.has_value();
  epoch_ = previous ? previous->epoch + 1 : 1;
  // A dead daemon's clients stay this instance's; after a shutdown the
  // segment begins anew (its old clients stay Disconnected).
  instance_ = previous && !previous->shutdown ? previous->instance : random_u64();
  try {
    make_subscribers("c2d", capacity);
    make_publishers("d2c");
    iox::popo::PublisherOptions ctl;
    ctl.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::DISCARD_OLDEST_DATA;
    ctl_pub_.emplace(topic(segment, kControl), ctl);
    // Clients' c2d publishers are connected to this daemon's subscribers once
    // RouDi has handled the subscriptions (SUBSCRIBED: a client offers;
    // WAIT_FOR_OFFER: none does): from then on their writes reach it.
    wait_for_roudi("subscribe the daemon to c2d", [&] {
      for (auto& s : sub_)
        if (s->getSubscriptionState() == iox::SubscribeState::SUBSCRIBE_REQUESTED) return false;
      return true;
    });
    // A client that reads d2c already (a takeover) gets this daemon's
    // answers once RouDi has connected it to the new publishers.
    if (held(reader_path(segment)))
      wait_for_roudi("connect the reading client to the daemon's d2c", [&] {
        for (auto& p : pub_)
          if (!p->hasSubscribers()) return false;
        return ctl_pub_->hasSubscribers();
      });
    write_state(segment, {static_cast<long>(::getpid()), epoch_, version, capacity, slot_size, instance_, 0});
  } catch (...) {
    end_endpoint();
    throw;
  }
  const auto c = static_cast<std::uint32_t>(capacity);
  return {{"capacity", {c, c, c}}, {"started", takeover_ ? "takeover" : "fresh"}, {"epoch", epoch_}};
}

json Driver::connect(const json& req) {
  if (role_ != Role::None) fail("InvalidState", "this process already serves or uses " + segment_);
  const std::string segment = string_field(req, "segment");
  const std::uint64_t version = uint_field(req, "protocol_version");
  slice_ = std::chrono::milliseconds(std::max<std::uint64_t>(1, uint_field_or(req, "sleep_slice_ms", 100)));
  const auto state = read_state(segment);
  if (!state) fail("NotFound", "no daemon has created " + segment + " (no " + state_path(segment) + ")");
  if (state->version != version)
    fail("ProtocolMismatch", "the daemon of " + segment + " speaks protocol version " + std::to_string(state->version) +
                                 ", this client " + std::to_string(version));
  if (state->shutdown) fail("Disconnected", "the daemon of " + segment + " has shut down");
  ensure_runtime();
  role_ = Role::Client;
  segment_ = segment;
  slot_size_ = state->slot_size;
  capacity_ = state->capacity;
  instance_ = state->instance;
  try {
    make_publishers("c2d");
    // A live daemon subscribes c2d at create: wait until RouDi has connected
    // these publishers to it, or the first writes would reach nobody. A dead
    // one's clients connect and write on (SPEC T-KILLED).
    if (held(lock_path(segment)))
      wait_for_roudi("connect this client's c2d publishers to the daemon", [&] {
        for (auto& p : pub_)
          if (!p->hasSubscribers()) return false;
        return true;
      });
    (void)become_reader(0);  // the first client to come reads d2c
  } catch (...) {
    end_endpoint();
    throw;
  }
  return json::object();
}

json Driver::disconnect() {
  if (role_ != Role::Client)
    fail("InvalidState", role_ == Role::Daemon ? "the daemon does not disconnect" : "not connected");
  end_endpoint();
  return json::object();
}

// D-RESET: the endpoint ends as at exit (its ports go, RouDi releases their
// chunks; a daemon's lock goes without a shutdown). The runtime stays: it is
// this process's registration with RouDi and serves the next endpoint.
json Driver::reset() {
  end_endpoint();
  workload_.reset();
  return json::object();
}

void Driver::need_endpoint() const {
  if (role_ == Role::None) fail("InvalidState", "not connected: create or connect first");
}

// Whether this endpoint's peer is gone: for a client, the daemon shut down,
// was replaced after a shutdown, or holds no lock (killed). The daemon has
// no single peer to lose.
bool Driver::peer_gone(std::string& why) const {
  if (role_ == Role::Daemon) {
    if (shut_down_) why = "this daemon has shut down";
    return shut_down_;
  }
  const auto state = read_state(segment_);
  if (!state || state->instance != instance_ || state->shutdown) {
    why = "the daemon of " + segment_ + " has shut down";
    return true;
  }
  if (!held(lock_path(segment_))) {
    why = "daemon pid " + std::to_string(state->pid) + " of " + segment_ + " is not running";
    return true;
  }
  return false;
}

// SPEC T-SHUTDOWN: after a shutdown every write is Disconnected. A killed
// daemon is not a shut-down one: clients' writes go on (T-KILLED).
void Driver::check_writable() const {
  if (role_ == Role::Daemon) {
    if (shut_down_) fail("Disconnected", "this daemon has shut down");
    return;
  }
  const auto state = read_state(segment_);
  if (!state || state->instance != instance_ || state->shutdown)
    fail("Disconnected", "the daemon of " + segment_ + " has shut down");
}

// Loans a chunk, fills it, publishes it. false with `full` set: no room now,
// either a subscriber's queue is full (block mode; iceoryx would spin in
// publish until it is taken from) or the mempool has no chunk to loan.
bool Driver::publish(int priority, const Bytes& data, std::string& full) {
  Publisher& pub = *pub_[priority];
  if (!o_.discard) {
    const auto f = pub.fill();
    if (f.full) {
      full = "a subscriber queue of " + topic_name(segment_, out_dir(), priority) + " holds " + std::to_string(f.size) +
             " of " + std::to_string(f.capacity) + " chunks";
      return false;
    }
  }
  auto chunk = pub.loan(static_cast<std::uint32_t>(data.size()));
  if (chunk.has_error()) {
    const auto e = chunk.get_error();
    if (e == iox::popo::AllocationError::RUNNING_OUT_OF_CHUNKS ||
        e == iox::popo::AllocationError::TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL) {
      full = std::string("iceoryx cannot loan a chunk: ") + iox::popo::asStringLiteral(e);
      return false;
    }
    fail("IoError", std::string("iceoryx cannot loan a chunk of ") + std::to_string(data.size()) +
                        " bytes: " + iox::popo::asStringLiteral(e));
  }
  if (!data.empty()) std::memcpy(chunk.value(), data.data(), data.size());
  pub.publish(chunk.value());
  return true;
}

json Driver::write(const json& req, bool blocking) {
  need_endpoint();
  const int priority = priority_field(req);
  const Bytes data = from_hex(string_field(req, "data"));
  const std::uint64_t timeout_ms = blocking ? uint_field(req, "timeout_ms") : 0;
  check_writable();
  if (data.size() > slot_size_)
    fail("MessageTooLarge",
         std::to_string(data.size()) + " bytes; " + segment_ + " takes at most " + std::to_string(slot_size_));
  std::string full;
  if (publish(priority, data, full)) return json::object();
  if (!blocking) fail("Full", full);
  // SPEC T-BLOCKING: wait for room, the timeout, or the peer to go. iceoryx
  // has no timed publish; this looks again every millisecond.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::string why;
    if (peer_gone(why)) fail("Disconnected", why);
    if (std::chrono::steady_clock::now() >= deadline)
      fail("Timeout", full + " for " + std::to_string(timeout_ms) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (publish(priority, data, full)) return json::object();
  }
}

// The next inbound chunk, highest priority first (SPEC R-ORDER), copied out
// and released at once.
std::optional<Message> Driver::take() {
  for (int p = 0; p < 3; ++p) {
    if (!sub_[p]) continue;
    auto got = sub_[p]->take();
    if (got.has_error()) {
      if (got.get_error() == iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) continue;
      fail("IoError", std::string("iceoryx take: ") + iox::popo::asStringLiteral(got.get_error()));
    }
    const void* payload = got.value();
    const auto* header = iox::mepoo::ChunkHeader::fromUserPayload(payload);
    const auto* bytes = static_cast<const std::uint8_t*>(payload);
    Message m{p, Bytes(bytes, bytes + header->userPayloadSize())};
    sub_[p]->release(payload);
    return m;
  }
  return std::nullopt;
}

bool Driver::any_data() const {
  for (const auto& s : sub_)
    if (s && s->hasData()) return true;
  return false;
}

json Driver::read() {
  need_endpoint();
  if (role_ == Role::Client && !become_reader(0))
    fail("InvalidState", "another client reads d2c of " + segment_ + " (it holds " + reader_path(segment_) + ")");
  auto m = take();
  if (!m) fail("Empty", std::string("no chunk in ") + in_dir() + " of " + segment_);
  return {{"priority", m->priority}, {"data", to_hex(m->data.data(), m->data.size())}};
}

json Driver::wait(const json& req) {
  need_endpoint();
  const std::uint64_t timeout_ms = uint_field(req, "timeout_ms");
  if (role_ == Role::Client && !become_reader(0))
    fail("InvalidState", "another client reads d2c of " + segment_ + " (it holds " + reader_path(segment_) + ")");
  if (any_data()) return json::object();  // a chunk already there wins over everything else
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::string why;
    if (peer_gone(why)) fail("Disconnected", why);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      fail("Timeout", std::string("nothing arrived in ") + in_dir() + " of " + segment_ + " within " +
                          std::to_string(timeout_ms) + " ms");
    // iceoryx's WaitSet sleeps on the subscribers' condition variable and a
    // publish wakes it; the slices only let us look at the daemon.
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        std::min<std::chrono::nanoseconds>(deadline - now, slice_));
    (void)waitset_->timedWait(
        iox::units::Duration::fromMicroseconds(static_cast<unsigned long long>(std::max<long long>(1, left.count()))));
    if (any_data()) return json::object();
    drain_control();  // the daemon said it shuts down: peer_gone tells
  }
}

json Driver::shutdown() {
  if (role_ != Role::Daemon) fail("InvalidState", "only the daemon shuts down");
  if (!shut_down_) {
    // Clients learn of it from the state file (kept; the lock file goes).
    auto s = read_state(segment_);
    if (s && s->pid == ::getpid()) {
      s->shutdown = 1;
      write_state(segment_, *s);
    }
    ::unlink(lock_path(segment_).c_str());
    ::close(lock_fd_);
    lock_fd_ = -1;
    shut_down_ = true;
    // Wake the reading client (its WaitSet watches d2c-ctl), then go.
    if (auto chunk = ctl_pub_->loan(0); !chunk.has_error()) ctl_pub_->publish(chunk.value());
    for (auto& p : pub_) p->stopOffer();
  }
  return json::object();
}

// D-CLEANUP: what a dead daemon of PATH left: its lock, state and reader
// files, and write_state's "PATH.iox-daemon.tmp.<pid>" files. iceoryx itself
// leaves nothing per segment: RouDi removes a dead process's ports.
json Driver::cleanup(const json& req) {
  const std::string segment = string_field(req, "segment");
  if (segment.empty()) fail("InvalidArgument", "cleanup needs a segment");
  if (held(lock_path(segment))) {
    const auto live = read_state(segment);
    fail("AlreadyExists", "a live daemon" + (live ? " (pid " + std::to_string(live->pid) + ")" : std::string()) +
                              " holds " + lock_path(segment));
  }
  int removed = 0;
  for (const std::string& f : {state_path(segment), lock_path(segment), reader_path(segment)}) {
    if (::unlink(f.c_str()) == 0)
      ++removed;
    else if (errno != ENOENT)
      fail(errno == EACCES || errno == EPERM ? "PermissionDenied" : "IoError",
           "cleanup: unlink " + f + ": " + std::strerror(errno));
  }
  const std::string dir_name =
      segment.find('/') == std::string::npos ? "./" : segment.substr(0, segment.rfind('/') + 1);
  const std::string base = segment.substr(segment.rfind('/') + 1);
  const std::string prefix = base + ".iox-daemon.tmp.";
  if (DIR* dir = ::opendir(dir_name.c_str())) {
    while (const dirent* e = ::readdir(dir)) {
      const std::string name = e->d_name;
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
          name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
        continue;
      if (::unlink((dir_name + name).c_str()) == 0) ++removed;
    }
    ::closedir(dir);
  }
  if (removed == 0) fail("NotFound", "nothing of " + segment + " to remove (no " + state_path(segment) + ")");
  return json::object();
}

json Driver::workload(const json& req) {
  need_endpoint();
  Workload w;
  w.role = string_field(req, "role");
  const std::string log = string_field(req, "log");
  w.writer = static_cast<std::uint32_t>(uint_field(req, "writer"));
  w.rate = uint_field(req, "rate");
  w.seed = uint_field(req, "seed");
  w.slot_size = uint_field(req, "slot_size");
  if (w.role == "daemon") {
    if (role_ != Role::Daemon || shut_down_) fail("InvalidState", "the daemon workload needs a serving daemon");
  } else if (w.role == "writer" || w.role == "reader") {
    if (role_ != Role::Client) fail("InvalidState", "the " + w.role + " workload needs a client");
  } else {
    fail("InvalidArgument", "role '" + w.role + "' is not writer, reader or daemon");
  }
  if (w.slot_size < kMinPayload) fail("InvalidArgument", "slot_size below " + std::to_string(kMinPayload));
  if (w.role != "reader" && w.slot_size > slot_size_)
    fail("InvalidArgument",
         "slot_size " + std::to_string(w.slot_size) + " exceeds the segment's " + std::to_string(slot_size_));
  // A writer never reads: it gives d2c up for the reader.
  if (w.role == "writer") drop_reader();
  w.fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (w.fd < 0) fail("IoError", "cannot open " + log + ": " + std::strerror(errno));
  workload_ = w;
  return json::object();
}

void Driver::run_workload() {
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a sleep ends early on SIGTERM
  ::sigaction(SIGTERM, &sa, nullptr);
  int status = 0;
  try {
    if (workload_->role == "writer")
      writer_loop(*workload_);
    else
      consumer_loop(*workload_);
  } catch (const Failure& f) {
    std::fprintf(stderr, "iceoryx driver: %s workload: %s: %s\n", workload_->role.c_str(), f.code.c_str(),
                 f.detail.c_str());
    status = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "iceoryx driver: %s workload: %s\n", workload_->role.c_str(), e.what());
    status = 1;
  }
  ::close(workload_->fd);
  end_endpoint();  // ports go before the runtime, which exit() destroys
  std::exit(status);
}

// D-WORKLOAD writer: Intent, publish, Ack (position 0) or Fail (Full).
void Driver::writer_loop(const Workload& w) {
  std::mt19937_64 rng(w.seed * 1000003 + w.writer);
  std::uniform_int_distribution<int> pick_priority(0, 2);
  std::uniform_int_distribution<std::size_t> pick_length(kMinPayload, w.slot_size);
  std::uint64_t n[3] = {};
  const std::uint64_t gap_ns = w.rate > 0 ? 1'000'000'000ULL / w.rate : 0;
  std::string full;
  while (!g_term) {
    const auto p = static_cast<std::uint8_t>(pick_priority(rng));
    const MessageId id{0, w.writer, p, n[p]++};
    put(w.fd, record('I', id));
    const bool sent = publish(p, encode_payload(id, pick_length(rng)), full);
    put(w.fd, record(sent ? 'A' : 'F', id));
    if (!sent) pause_ns(1'000'000);
    pause_ns(gap_ns);
  }
}

// D-WORKLOAD reader (d2c) and daemon (c2d, answering on d2c), asleep in the
// WaitSet between chunks, in 50 ms slices so that SIGTERM is seen.
void Driver::consumer_loop(const Workload& w) {
  const bool daemon = role_ == Role::Daemon;
  const std::uint8_t stream = daemon ? 0 : 1;
  if (!daemon)
    while (!become_reader(50))  // the previous reader may still be going
      if (g_term) return;
  std::mt19937_64 rng(w.seed ^ (epoch_ * 0x9E3779B97F4A7C15ULL));
  std::uniform_int_distribution<std::size_t> pick_length(kMinPayload, w.slot_size);
  std::uint64_t answer_n[3] = {};
  if (daemon) {
    Record s = record('S', MessageId{});
    s.n = epoch_;
    s.position = takeover_ ? 1 : 0;
    put(w.fd, s);
  }
  std::string full;
  while (!g_term) {
    const std::uint64_t t = monotonic_ns();
    std::optional<Message> m = take();
    if (!m) {
      (void)waitset_->timedWait(iox::units::Duration::fromMilliseconds(50));
      drain_control();
      continue;
    }
    MessageId id;
    const bool intact = decode_payload(m->data, id) && id.stream == stream && id.priority == m->priority;
    Record r = record(intact ? 'D' : 'C', id);
    r.t_ns = t;
    r.epoch = daemon ? epoch_ : 0;
    put(w.fd, r);
    if (!daemon || !intact) continue;
    const MessageId aid{1, static_cast<std::uint32_t>(epoch_), id.priority, answer_n[id.priority]++};
    put(w.fd, record('I', aid));
    const bool sent = publish(aid.priority, encode_payload(aid, pick_length(rng)), full);
    put(w.fd, record(sent ? 'A' : 'F', aid));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--discard") {
      o.discard = true;
    } else if (arg == "--history" && i + 1 < argc) {
      o.history = std::min<std::uint64_t>(std::strtoull(argv[++i], nullptr, 10), kMaxHistory);
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: %s [--discard] [--history N]\n\nEclipse iceoryx publishers and subscribers as a memlink conformance\n"
          "driver: speaks conformance/DRIVER.md (protocol 2) on stdin/stdout. iox-roudi must run.\n"
          "  --discard    full subscriber queues drop their oldest chunk (iceoryx's default);\n"
          "               without it they block publishers and write answers Full\n"
          "  --history N  publishers keep their last N chunks for late subscribers (N <= %llu)\n",
          argv[0], static_cast<unsigned long long>(kMaxHistory));
      return 0;
    } else if (arg == "--version" || arg == "-V") {
      std::printf("memlink-driver-iceoryx %s (driver protocol %d, iceoryx %s)\n", MEMLINK_IOX_DRIVER_VERSION, kProtocol,
                  ICEORYX_LATEST_RELEASE_VERSION);
      return 0;
    } else {
      std::fprintf(stderr, "usage: %s [--discard] [--history N]\n", argv[0]);
      return 2;
    }
  }
  // D-FRAME: nothing but responses on stdout. Responses go to a copy of the
  // original stdout; file descriptor 1 becomes stderr, so whatever iceoryx
  // prints lands there.
  const int out_fd = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  FILE* out = out_fd >= 0 ? ::fdopen(out_fd, "w") : nullptr;
  if (out == nullptr || ::dup2(2, 1) < 0) {
    std::fprintf(stderr, "iceoryx driver: cannot set up stdout: %s\n", std::strerror(errno));
    return 1;
  }
  {
    Driver driver(o);
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string response = driver.serve(line).dump(-1, ' ', false, json::error_handler_t::replace);
      std::fputs(response.c_str(), out);
      std::fputc('\n', out);
      std::fflush(out);
      if (driver.workload_pending()) driver.run_workload();
    }
  }  // EOF: the ports go before the runtime does
  return 0;
}
