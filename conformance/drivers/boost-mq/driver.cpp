// memlink conformance driver for Boost.Interprocess message_queue.
//
// Speaks conformance/DRIVER.md, protocol 2 (and protocol 1, which the suite
// falls back to): one JSON request per line on stdin, one JSON response per
// line on stdout. The suite starts one process per role; this one becomes
// the daemon on `create` and a client on `connect`, and is fresh again after
// `reset` (or a client's `disconnect`). README.md in this folder explains the
// mapping and what Boost's queue cannot promise (sequence numbers, two-step
// reads, and surviving a process killed while it holds the queue's mutex).
// It includes nothing from the memlink tree: it builds alone (README.md).
//
// Build: g++ -std=c++20 -Wall -Wextra -O2 driver.cpp -lpthread -lrt
// Usage: memlink-driver-boost-mq [--poll-ms N]
//   --poll-ms N: wait for messages and for room by trying every N ms instead
//   of sleeping on the queue's condition variables (see README.md: a process
//   killed while asleep there can wedge the queue for everyone).

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/version.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bip = boost::interprocess;
using json = nlohmann::ordered_json;  // ordered: responses read "id", "ok", then results
using Queue = bip::message_queue;
using Bytes = std::vector<std::uint8_t>;

static_assert(std::endian::native == std::endian::little, "D-RECORD and D-PAYLOAD are written as in memory");

namespace {

// This driver's own version (--version; README.md says what changed).
constexpr const char* kDriverVersion = "1.1";
// DRIVER.md D-VERSION: the suite asks for 2 first, then falls back to 1.
constexpr int kProtocol = 2;
constexpr int kOldestProtocol = 1;
// D-LIMITS: what `create` accepts, and refuses (InvalidArgument) outside.
// segment_size only sizes the queues (see create), so SPEC's own range;
// slot_size is Boost's max_msg_size, kept to SPEC's largest payload.
constexpr std::uint64_t kMinSegmentSize = 4097;
constexpr std::uint64_t kMaxSegmentSize = 268439552;
constexpr std::uint64_t kMinSlotSize = 1;
constexpr std::uint64_t kMaxSlotSize = 4096;
constexpr std::size_t kMaxQueueMessages = 64;
// Blocking calls (write_blocking, wait) sleep in slices this long and look at
// the daemon between slices, like SPEC T-WAIT's sliced sleeps. A slice ending
// never ends the call by itself; only a message, the caller's timeout, or a
// daemon found gone does.
constexpr auto kSlice = std::chrono::milliseconds(100);
// Workload loops receive with deadlines this short so that SIGTERM is seen.
constexpr auto kWorkloadSlice = std::chrono::milliseconds(50);

// ---------------------------------------------------------------- errors --

// An ok:false answer. `code` is one of DRIVER.md D-ERRORS' names.
struct Failure {
  std::string code, detail;
};

[[noreturn]] void fail(std::string code, std::string detail) { throw Failure{std::move(code), std::move(detail)}; }

// The D-ERRORS code for an exception Boost threw.
const char* code_of(const bip::interprocess_exception& e) {
  switch (e.get_error_code()) {
    case bip::not_found_error: return "NotFound";
    case bip::already_exists_error: return "AlreadyExists";
    case bip::security_error: return "PermissionDenied";
    default: return "IoError";
  }
}

// ----------------------------------------------------------------- bytes --

std::string to_hex(const Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (std::uint8_t c : b) {
    s += kDigits[c >> 4];
    s += kDigits[c & 15];
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
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
  return b;
}

// Boost copies from this pointer; an empty message still needs a valid one.
const void* bytes_of(const Bytes& b) {
  static const std::uint8_t kNothing = 0;
  return b.empty() ? &kNothing : b.data();
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Boost's timed calls take an absolute boost::posix_time::ptime on the
// universal (wall) clock.
boost::posix_time::ptime deadline_after(std::chrono::nanoseconds d) {
  return boost::posix_time::microsec_clock::universal_time() +
         boost::posix_time::microseconds(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// ------------------------------------------------------- request fields --

std::uint64_t uint_field(const json& req, const char* name) {
  auto it = req.find(name);
  if (it == req.end() || !it->is_number_unsigned())
    fail("InvalidArgument", std::string("field '") + name + "' must be a non-negative integer");
  return it->get<std::uint64_t>();
}

std::string string_field(const json& req, const char* name) {
  auto it = req.find(name);
  if (it == req.end() || !it->is_string()) fail("InvalidArgument", std::string("field '") + name + "' must be a string");
  return it->get<std::string>();
}

// SPEC priorities: 0 critical, 1 high, 2 low. Boost serves the highest
// number first, so a SPEC priority P travels as Boost priority 2 - P.
int priority_field(const json& req) {
  const std::uint64_t p = uint_field(req, "priority");
  if (p > 2) fail("InvalidArgument", "priority " + std::to_string(p) + " is not 0, 1 or 2");
  return static_cast<int>(p);
}

unsigned boost_priority(int p) { return static_cast<unsigned>(2 - p); }

// ------------------------------------------------------ names and files --

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// A segment PATH becomes two queues. Boost queue names may not contain
// slashes, so the path is hashed: "memlink-bmq-<fnv1a64 hex>-c2d" / "-d2c".
std::string queue_name(const std::string& segment, const char* direction) {
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a64(segment)));
  return std::string("memlink-bmq-") + hash + "-" + direction;
}

// The daemon file, PATH.bmq-daemon, holds one line "pid epoch version
// instance". Boost's queue has no room for any of it: the file says who
// serves (pid), how many daemons came before (epoch), which protocol version
// clients must speak, and which pair of queues this is (instance: a random
// number chosen when the queues are created and kept across takeovers, so a
// client still holding queues that a shutdown removed can tell that a new
// daemon's fresh queues are not its own).
struct DaemonFile {
  long pid = 0;
  std::uint64_t epoch = 0;
  std::uint64_t version = 0;
  std::uint64_t instance = 0;
};

std::string daemon_file_path(const std::string& segment) { return segment + ".bmq-daemon"; }

std::optional<DaemonFile> read_daemon_file(const std::string& path) {
  std::ifstream in(path);
  DaemonFile f;
  if (!(in >> f.pid >> f.epoch >> f.version >> std::hex >> f.instance)) return std::nullopt;
  return f;
}

// Written to a temporary file and renamed into place, so a reader never sees
// half a file, even if this process is killed while writing it.
void write_daemon_file(const std::string& path, const DaemonFile& f) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << f.pid << ' ' << f.epoch << ' ' << f.version << ' ' << std::hex << f.instance << '\n';
    if (!out.flush()) fail("IoError", "cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("IoError", "cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
}

// kill(pid, 0) finds any process we could signal (EPERM: one we may not, but
// it exists). A SIGKILLed process stays a zombie until its parent reaps it;
// it runs no code, so it counts as dead (as in SPEC K-HEARTBEAT). A reused
// pid looks alive: that is the price of a pid file instead of a lock.
bool process_alive(long pid) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    const auto paren = line.rfind(')');  // "pid (comm) S ...": comm may hold spaces
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return false;
  }
  return true;
}

// The queue `name`, or nullptr if there is none.
std::unique_ptr<Queue> open_queue(const std::string& name) {
  try {
    return std::make_unique<Queue>(bip::open_only, name.c_str());
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error) return nullptr;
    throw;
  }
}

std::uint64_t random_u64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// --------------------------------------------- workload (D-RECORD etc.) --

// D-RECORD: 48 bytes, little-endian, no padding.
struct Record {
  char type = 'I';  // I Intent, A Ack, F Fail, D Deliver, C Corrupt, S Serving
  std::uint8_t stream = 0;  // 0 c2d, 1 d2c
  std::uint8_t priority = 0;
  std::uint8_t reserved = 0;
  std::uint32_t writer = 0;
  std::uint64_t n = 0;         // Serving: the epoch
  std::uint64_t t_ns = 0;      // CLOCK_MONOTONIC
  std::uint64_t position = 0;  // Boost has no ring positions: 0 (Serving: 0 fresh, 1 takeover)
  std::uint64_t epoch = 0;     // Deliver by the daemon: its epoch
  std::uint64_t sequence = 0;  // Boost has no sequence numbers: 0
};
static_assert(sizeof(Record) == 48);

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

// One write(2) per record on an O_APPEND file: a record is wholly in the log
// or not at all when the process is killed.
void put(int fd, const Record& r) {
  if (::write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r))
    std::fprintf(stderr, "boost-mq driver: cannot append a record: %s\n", std::strerror(errno));
}

// D-PAYLOAD, byte for byte as chaos/history.cpp's encode_payload.
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

// The id, if `payload` passes its own check (checksum and filler).
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

// Sleeps `ns`, cut short by SIGTERM (the handler is installed without
// SA_RESTART, so nanosleep returns EINTR).
void pause_ns(std::uint64_t ns) {
  if (ns == 0) return;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000ULL), static_cast<long>(ns % 1'000'000'000ULL)};
  ::nanosleep(&ts, nullptr);
}

struct Workload {
  std::string role;  // writer, reader, daemon
  int fd = -1;
  std::uint32_t writer = 0;
  std::uint64_t rate = 0;
  std::uint64_t seed = 0;
  std::size_t slot_size = 0;
};

// ---------------------------------------------------------------- driver --

struct Message {
  int priority = 0;  // SPEC priority
  Bytes data;
};

class Driver {
 public:
  // poll: 0 sleeps in Boost's timed calls; else how often to try instead.
  explicit Driver(std::chrono::milliseconds poll) : poll_(poll) {}
  // The response to one request line.
  json serve(const std::string& line);
  // Set once a `workload` request was answered: main prints the answer and
  // then calls run_workload, which never returns.
  bool workload_pending() const { return workload_.has_value(); }
  [[noreturn]] void run_workload();

 private:
  enum class Role { None, Daemon, Client };

  json dispatch(const json& req);
  json hello(const json& req);
  json reset();
  json create(const json& req);
  json connect(const json& req);
  json disconnect();
  // Drops this process's endpoint (mappings, stash, role) as its exit would.
  void forget_endpoint();
  // `{"sequence":0}` under protocol 1 (where it was required), else nothing:
  // Boost has no sequence numbers (DRIVER.md D-IO, T-SEQ).
  json sequence_field() const { return protocol_ == 1 ? json{{"sequence", 0}} : json::object(); }
  json write(const json& req, bool blocking);
  json read();
  json wait(const json& req);
  json shutdown();
  json cleanup(const json& req);
  json workload(const json& req);

  void need_endpoint() const;
  void check_writable() const;
  void check_peer(bool dead_is_gone) const;
  Queue& outbound() const { return role_ == Role::Daemon ? *d2c_ : *c2d_; }
  Queue& inbound() const { return role_ == Role::Daemon ? *c2d_ : *d2c_; }
  std::string outbound_name() const { return queue_name(segment_, role_ == Role::Daemon ? "d2c" : "c2d"); }
  std::string inbound_name() const { return queue_name(segment_, role_ == Role::Daemon ? "c2d" : "d2c"); }
  bool send_now(int priority, const Bytes& data);
  bool send_within(int priority, const Bytes& data, std::chrono::nanoseconds d);
  std::optional<Message> take(std::optional<std::chrono::nanoseconds> wait_for);

  void writer_loop(const Workload& w);
  void consumer_loop(const Workload& w);

  const std::chrono::milliseconds poll_;
  int protocol_ = kProtocol;  // what hello agreed on
  Role role_ = Role::None;
  std::string segment_;
  std::unique_ptr<Queue> c2d_, d2c_;
  std::uint64_t instance_ = 0;  // the daemon file's instance when we created / connected
  // `wait` must consume the message it waits for (Boost's receive is the
  // only way to block on the queue, and it is destructive); it keeps the
  // message here and the next read returns it first. Lost if this process
  // dies in between.
  std::optional<Message> stash_;
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
    res["detail"] = detail;
    return res;
  };
  if (req.is_discarded() || !req.is_object()) return failed("InvalidArgument", "not a JSON object: " + line.substr(0, 200));
  if (auto id = req.find("id"); id != req.end() && id->is_number_integer()) res["id"] = *id;
  else return failed("InvalidArgument", "request without an integer \"id\"");
  try {
    json out = dispatch(req);
    res["ok"] = true;
    for (auto& [k, v] : out.items()) res[k] = v;
    return res;
  } catch (const Failure& f) {
    return failed(f.code, f.detail);
  } catch (const bip::interprocess_exception& e) {
    return failed(code_of(e), std::string("boost::interprocess: ") + e.what());
  } catch (const json::exception& e) {
    return failed("InvalidArgument", e.what());
  } catch (const std::exception& e) {
    return failed("IoError", e.what());
  }
}

// DRIVER.md D-LIFECYCLE: hello, cleanup, arm, release and reset are valid in
// every state; every other op of the protocol needs the role that performs
// it (InvalidState otherwise) before it is looked at, or found Unsupported.
json Driver::dispatch(const json& req) {
  const std::string op = string_field(req, "op");
  if (op == "hello") return hello(req);
  if (op == "cleanup") return cleanup(req);
  if (op == "reset") return reset();
  if (op == "arm" || op == "release")
    fail("Unsupported",
         "no crash or pause points: Boost's steps cannot be stopped between (no crash_points, pause_points)");

  static const std::set<std::string> kOps = {
      "create",  "connect",  "disconnect",  "write",       "write_blocking", "read",
      "peek",    "take",     "finish",      "wait",        "shutdown",       "set_backpressure",
      "observe", "workload", "stop_writer", "stop_reader", "recover",        "corrupt"};
  if (kOps.count(op) == 0) fail("Unsupported", "unknown op '" + op + "'");  // D-ERRORS: an op a driver does not know
  const char* const role = role_ == Role::Daemon ? "the daemon" : "a client";
  if (op == "create" || op == "connect") {
    if (role_ != Role::None)
      fail("InvalidState", std::string("this process is already ") + role + " of " + segment_ + "; " + op +
                               (role_ == Role::Client ? " after disconnect or reset" : " after reset"));
  } else if (role_ == Role::None) {
    fail("InvalidState", op + " before create or connect (this process is fresh)");
  } else if (op == "disconnect" && role_ != Role::Client) {
    fail("InvalidState", "the daemon does not disconnect (shutdown, or reset)");
  } else if ((op == "shutdown" || op == "set_backpressure") && role_ != Role::Daemon) {
    fail("InvalidState", "a client cannot " + op + "; only the daemon can");
  }

  if (op == "create") return create(req);
  if (op == "connect") return connect(req);
  if (op == "disconnect") return disconnect();
  if (op == "write") return write(req, false);
  if (op == "write_blocking") return write(req, true);
  if (op == "read") return read();
  if (op == "wait") return wait(req);
  if (op == "shutdown") return shutdown();
  if (op == "workload") return workload(req);
  if (op == "peek") fail("Unsupported", "Boost's message_queue cannot look at a message without receiving it");
  if (op == "take" || op == "finish")
    fail("Unsupported", "Boost's receive is destructive: there is no claimed-but-unfinished state (no two_step)");
  if (op == "set_backpressure") fail("Unsupported", "Boost's message_queue has no backpressure word");
  if (op == "observe") fail("Unsupported", "Boost's message_queue has no SPEC-observable state (no head, tail, slots)");
  fail("Unsupported", op + ": Boost's steps cannot be stopped between or corrupted one field at a time (no stops)");
}

json Driver::hello(const json& req) {
  const std::uint64_t protocol = uint_field(req, "protocol");
  if (protocol != kProtocol && protocol != kOldestProtocol)
    fail("ProtocolMismatch", "driver speaks protocols " + std::to_string(kOldestProtocol) + " and " +
                                 std::to_string(kProtocol) + ", suite asked for " + std::to_string(protocol));
  protocol_ = static_cast<int>(protocol);
  json caps = {"priorities", "daemon_writes", "write_blocking", "wait", "crash_recovery", "workload", "cleanup"};
  if (protocol_ == 1)  // exactly as before protocol 2
    return {{"protocol", 1}, {"name", "boost-mq"}, {"version", BOOST_LIB_VERSION}, {"capabilities", caps}};
  caps.push_back("reset");
  return {{"protocol", kProtocol},
          {"name", "boost-mq"},
          {"version", BOOST_LIB_VERSION},
          {"capabilities", caps},
          {"limits",
           {{"segment_size", {{"min", kMinSegmentSize}, {"max", kMaxSegmentSize}}},
            {"slot_size", {{"min", kMinSlotSize}, {"max", kMaxSlotSize}}}}}};
}

void Driver::forget_endpoint() {
  stash_.reset();
  c2d_.reset();
  d2c_.reset();
  role_ = Role::None;
  segment_.clear();
  instance_ = 0;
  epoch_ = 0;
  takeover_ = false;
  shut_down_ = false;
}

// DRIVER.md D-RESET: ends the endpoint as this process's exit would, and
// leaves it fresh. A daemon does not shut down: its queues and every message
// in them stay, and its daemon file stays too, with pid 0 in place of ours,
// so that everyone now judges it dead as they would once we exited (the
// next create takes over, epoch + 1; clients write on, T-KILLED; cleanup may
// remove it). A client just goes, and a message its `wait` took is lost, as
// on exit.
json Driver::reset() {
  if (protocol_ == 1) fail("Unsupported", "protocol 1 has no reset (DRIVER.md D-VERSION)");
  if (role_ == Role::Daemon && !shut_down_) {
    const std::string file = daemon_file_path(segment_);
    if (auto f = read_daemon_file(file); f && f->pid == ::getpid()) {
      f->pid = 0;
      write_daemon_file(file, *f);
    }
  }
  if (stash_)
    std::fprintf(stderr, "boost-mq driver pid %ld: reset drops the message wait took, as exit would\n",
                 static_cast<long>(::getpid()));
  forget_endpoint();
  return json::object();
}

json Driver::create(const json& req) {
  const std::string segment = string_field(req, "segment");
  const std::uint64_t segment_size = uint_field(req, "segment_size");
  const std::uint64_t slot_size = uint_field(req, "slot_size");
  const std::uint64_t version = uint_field(req, "protocol_version");
  if (segment.empty()) fail("InvalidArgument", "create needs a segment");
  // D-LIMITS: the hello's limits, enforced.
  if (segment_size < kMinSegmentSize || segment_size > kMaxSegmentSize)
    fail("InvalidArgument", "segment_size " + std::to_string(segment_size) + " is outside " +
                                std::to_string(kMinSegmentSize) + ".." + std::to_string(kMaxSegmentSize));
  if (slot_size < kMinSlotSize || slot_size > kMaxSlotSize)
    fail("InvalidArgument", "slot_size " + std::to_string(slot_size) + " is outside " + std::to_string(kMinSlotSize) +
                                ".." + std::to_string(kMaxSlotSize));
  // Roughly the SPEC's geometry: a slot costs slot_size plus a header, and
  // the segment is split over 2 directions x 3 priorities. Boost's queue has
  // one capacity for all three priorities of a direction.
  const std::size_t max_msgs = std::clamp<std::uint64_t>(segment_size / (slot_size + 64) / 6, 1, kMaxQueueMessages);

  const std::string file = daemon_file_path(segment);
  const auto previous = read_daemon_file(file);
  if (previous && process_alive(previous->pid))
    fail("AlreadyExists", "daemon pid " + std::to_string(previous->pid) + " (epoch " + std::to_string(previous->epoch) +
                              ") serves " + segment);

  const std::string c2d_name = queue_name(segment, "c2d"), d2c_name = queue_name(segment, "d2c");
  auto c2d = open_queue(c2d_name);
  auto d2c = open_queue(d2c_name);
  const bool takeover = c2d || d2c;
  std::uint64_t epoch = 1, instance = 0;
  if (takeover) {
    // A dead daemon left its queues, and every message in them: serve them
    // as they are (their geometry is the one they were created with). A
    // daemon killed between creating the two queues left only one.
    if (!c2d) c2d = std::make_unique<Queue>(bip::open_or_create, c2d_name.c_str(), max_msgs, slot_size);
    if (!d2c) d2c = std::make_unique<Queue>(bip::open_or_create, d2c_name.c_str(), max_msgs, slot_size);
    epoch = previous ? previous->epoch + 1 : 1;
    instance = previous ? previous->instance : random_u64();
  } else {
    // create_only: of two daemons starting at once, one gets AlreadyExists.
    c2d = std::make_unique<Queue>(bip::create_only, c2d_name.c_str(), max_msgs, slot_size);
    d2c = std::make_unique<Queue>(bip::create_only, d2c_name.c_str(), max_msgs, slot_size);
    instance = random_u64();
  }
  write_daemon_file(file, {::getpid(), epoch, version, instance});

  role_ = Role::Daemon;
  segment_ = segment;
  c2d_ = std::move(c2d);
  d2c_ = std::move(d2c);
  instance_ = instance;
  epoch_ = epoch;
  takeover_ = takeover;
  shut_down_ = false;
  stash_.reset();
  // D-CREATE. One capacity for all three priorities (README.md); a takeover
  // serves the queues as they were created, so their sizes, not the ones
  // asked for, are the answer.
  const auto n = std::min(c2d_->get_max_msg(), d2c_->get_max_msg());
  const auto largest = std::min(c2d_->get_max_msg_size(), d2c_->get_max_msg_size());
  return {
      {"started", takeover ? "takeover" : "fresh"}, {"capacity", {n, n, n}}, {"slot_size", largest}, {"epoch", epoch}};
}

json Driver::connect(const json& req) {
  const std::string segment = string_field(req, "segment");
  const std::uint64_t version = uint_field(req, "protocol_version");
  const std::string c2d_name = queue_name(segment, "c2d"), d2c_name = queue_name(segment, "d2c");
  auto c2d = open_queue(c2d_name);
  auto d2c = open_queue(d2c_name);
  if (!c2d || !d2c)
    fail("NotFound", "no daemon has created " + segment + " (queue " + (c2d ? d2c_name : c2d_name) + " does not exist)");
  // SPEC V-CONNECT: version first, then a daemon that shut down. A daemon
  // that was killed (its file names a dead pid) still accepts clients: their
  // writes wait in c2d for the next daemon (SPEC T-KILLED).
  const auto daemon = read_daemon_file(daemon_file_path(segment));
  if (!daemon) fail("Disconnected", "the daemon of " + segment + " has shut down (no " + daemon_file_path(segment) + ")");
  if (daemon->version != version)
    fail("ProtocolMismatch", "daemon of " + segment + " speaks protocol version " + std::to_string(daemon->version) +
                                 ", client asked for " + std::to_string(version));
  role_ = Role::Client;
  segment_ = segment;
  c2d_ = std::move(c2d);
  d2c_ = std::move(d2c);
  instance_ = daemon->instance;
  stash_.reset();
  return json::object();
}

json Driver::disconnect() {
  // A message `wait` took goes back to d2c, the queue it came from (behind
  // the others of its priority), rather than be lost. (Driver 1.0 sent it to
  // c2d, the client's outbound queue: the daemon read its own message back.)
  if (stash_ && !inbound().try_send(bytes_of(stash_->data), stash_->data.size(), boost_priority(stash_->priority)))
    std::fprintf(stderr, "boost-mq driver: d2c is full; the message wait took is lost\n");
  forget_endpoint();  // fresh: may connect anew (D-LIFECYCLE)
  return json::object();
}

void Driver::need_endpoint() const {
  if (role_ == Role::None) fail("InvalidState", "not connected: create or connect first");
}

// Disconnected if this endpoint's peer is gone: for a client, the daemon shut
// down (its file is gone, or belongs to new queues) or, with `dead_is_gone`,
// was killed. A daemon has no peer to lose.
void Driver::check_peer(bool dead_is_gone) const {
  if (role_ != Role::Client) return;
  const auto daemon = read_daemon_file(daemon_file_path(segment_));
  if (!daemon || daemon->instance != instance_) fail("Disconnected", "the daemon of " + segment_ + " has shut down");
  if (dead_is_gone && !process_alive(daemon->pid))
    fail("Disconnected", daemon->pid == 0
                             ? "the daemon of " + segment_ + " was reset (gone, as if it exited)"
                             : "daemon pid " + std::to_string(daemon->pid) + " of " + segment_ + " is not running");
}

// SPEC T-SHUTDOWN: after a shutdown every write is Disconnected. A killed
// daemon is not a shut-down one: clients' writes go on into c2d (T-KILLED).
void Driver::check_writable() const {
  if (role_ == Role::Daemon && shut_down_) fail("Disconnected", "this daemon has shut down");
  check_peer(/*dead_is_gone=*/false);
}

bool Driver::send_now(int priority, const Bytes& data) {
  return outbound().try_send(bytes_of(data), data.size(), boost_priority(priority));
}

// Sends, waiting up to `d` for room: asleep in timed_send, or with --poll-ms
// trying again every poll_ (no process ever sleeps on the condition variable).
bool Driver::send_within(int priority, const Bytes& data, std::chrono::nanoseconds d) {
  if (poll_.count() == 0)
    return outbound().timed_send(bytes_of(data), data.size(), boost_priority(priority), deadline_after(d));
  const auto end = std::chrono::steady_clock::now() + d;
  for (;;) {
    if (send_now(priority, data)) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return false;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(end - now, poll_));
  }
}

// The next inbound message: the stashed one, else one from the queue,
// waiting up to `wait_for` (nullopt: not at all).
std::optional<Message> Driver::take(std::optional<std::chrono::nanoseconds> wait_for) {
  if (stash_) {
    std::optional<Message> m = std::move(stash_);
    stash_.reset();
    return m;
  }
  Queue& q = inbound();
  Bytes buf(std::max<std::size_t>(q.get_max_msg_size(), 1));  // Boost refuses a buffer below max_msg_size
  Queue::size_type got = 0;
  unsigned prio = 0;
  bool ok = q.try_receive(buf.data(), buf.size(), got, prio);
  if (!ok && wait_for && poll_.count() == 0) {
    ok = q.timed_receive(buf.data(), buf.size(), got, prio, deadline_after(*wait_for));
  } else if (!ok && wait_for) {  // --poll-ms: try again every poll_ until wait_for has passed
    const auto end = std::chrono::steady_clock::now() + *wait_for;
    for (auto now = std::chrono::steady_clock::now(); !ok && now < end; now = std::chrono::steady_clock::now()) {
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(end - now, poll_));
      ok = q.try_receive(buf.data(), buf.size(), got, prio);
    }
  }
  if (!ok) return std::nullopt;
  buf.resize(got);
  if (prio > 2)
    fail("CorruptSegment", inbound_name() + " held a message of Boost priority " + std::to_string(prio) +
                               " (this driver writes 0..2); dropped");
  return Message{2 - static_cast<int>(prio), std::move(buf)};
}

json Driver::write(const json& req, bool blocking) {
  need_endpoint();
  const int priority = priority_field(req);
  const Bytes data = from_hex(string_field(req, "data"));
  const std::uint64_t timeout_ms = blocking ? uint_field(req, "timeout_ms") : 0;
  check_writable();
  // Boost throws on an oversized message; SPEC T-TOO-LARGE wants a plain refusal.
  const std::size_t max = outbound().get_max_msg_size();
  if (data.size() > max)
    fail("MessageTooLarge", std::to_string(data.size()) + " bytes; " + outbound_name() + " takes at most " +
                                std::to_string(max));
  // Boost has no sequence numbers (SPEC T-SEQ cannot be honoured).
  const json ok = sequence_field();
  if (send_now(priority, data)) return ok;
  auto full = [&] {
    return outbound_name() + " holds " + std::to_string(outbound().get_num_msg()) + " of " +
           std::to_string(outbound().get_max_msg()) + " messages";
  };
  if (!blocking) fail("Full", full());

  // SPEC T-BLOCKING: wait for room, the timeout, or the peer to go.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    check_peer(/*dead_is_gone=*/true);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) fail("Timeout", full() + " for " + std::to_string(timeout_ms) + " ms");
    if (send_within(priority, data, std::min<std::chrono::nanoseconds>(deadline - now, kSlice))) return ok;
  }
}

json Driver::read() {
  need_endpoint();
  auto m = take(std::nullopt);
  if (!m) fail("Empty", inbound_name() + " is empty");
  json out = {{"priority", m->priority}, {"data", to_hex(m->data)}};
  out.update(sequence_field());
  return out;
}

json Driver::wait(const json& req) {
  need_endpoint();
  const std::uint64_t timeout_ms = uint_field(req, "timeout_ms");
  // A message already there wins over everything else (as in the reference).
  if (stash_ || (stash_ = take(std::nullopt))) return json::object();
  auto check_gone = [&] {
    if (role_ == Role::Daemon && shut_down_) fail("Disconnected", "this daemon has shut down");
    check_peer(/*dead_is_gone=*/true);
  };
  check_gone();
  // Boost's timed_receive sleeps on the queue's condition variable and is
  // woken by the sender (with --poll-ms, take() tries every few ms instead);
  // the slices only let us look at the daemon between sleeps.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) fail("Timeout", "nothing arrived in " + inbound_name() + " within " + std::to_string(timeout_ms) + " ms");
    if ((stash_ = take(std::min<std::chrono::nanoseconds>(deadline - now, kSlice)))) return json::object();
    check_gone();
  }
}

json Driver::shutdown() {
  if (!shut_down_) {
    // Clients learn of the shutdown from the missing daemon file; removing
    // the queue names leaves the mappings clients hold readable (SPEC
    // T-SHUTDOWN: messages already in d2c may still be read).
    const std::string file = daemon_file_path(segment_);
    if (auto f = read_daemon_file(file); f && f->pid == ::getpid()) std::remove(file.c_str());
    Queue::remove(queue_name(segment_, "c2d").c_str());
    Queue::remove(queue_name(segment_, "d2c").c_str());
    shut_down_ = true;
  }
  return json::object();
}

// D-CLEANUP: removes what a dead daemon of PATH left: both queues' names, the
// daemon file, and write_daemon_file's "PATH.bmq-daemon.tmp.<pid>" files.
// Any process may ask, with or without an endpoint; it leaves this process's
// own queues (mappings) alone. It never opens a queue: opening maps it, and a
// half-built queue spins open_only forever, and a queue's mutex may be held
// by a killed process for good. Removing a name needs neither.
json Driver::cleanup(const json& req) {
  const std::string segment = string_field(req, "segment");
  if (segment.empty()) fail("InvalidArgument", "cleanup needs a segment");
  const std::string file = daemon_file_path(segment);
  // The same liveness test as create's AlreadyExists (a zombie is dead).
  if (const auto daemon = read_daemon_file(file); daemon && process_alive(daemon->pid))
    fail("AlreadyExists", "daemon pid " + std::to_string(daemon->pid) + " (epoch " + std::to_string(daemon->epoch) +
                              ") serves " + segment);

  int removed = 0;
  std::string error_code, error_detail;  // the first failure, if any
  auto failed = [&](int err, const std::string& what) {
    if (!error_code.empty()) return;
    error_code = err == EACCES || err == EPERM ? "PermissionDenied" : "IoError";
    error_detail = "cleanup of " + segment + ": " + what + ": " + std::strerror(err);
  };
  // The queues first, so that a connect racing with us finds NotFound rather
  // than queues without a daemon. Queue::remove is shm_unlink: false with
  // ENOENT when the name is not there.
  for (const char* direction : {"c2d", "d2c"}) {
    const std::string name = queue_name(segment, direction);
    errno = 0;
    if (Queue::remove(name.c_str())) ++removed;
    else if (errno != ENOENT) failed(errno ? errno : EIO, "removing queue " + name);
  }
  const bool had_file = ::unlink(file.c_str()) == 0;
  if (!had_file && errno != ENOENT) failed(errno, "unlink " + file);

  // Temporary daemon files of daemons killed before their rename.
  namespace fs = std::filesystem;
  const fs::path seg(segment);
  const fs::path dir = seg.has_parent_path() ? seg.parent_path() : fs::path(".");
  const std::string prefix = seg.filename().string() + ".bmq-daemon.tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
      continue;
    if (::unlink(it->path().c_str()) == 0) ++removed;
    else if (errno != ENOENT) failed(errno, "unlink " + it->path().string());
  }

  if (!error_code.empty()) fail(error_code, error_detail);
  if (removed == 0 && !had_file)
    fail("NotFound", "nothing of " + segment + " to remove (no " + file + ", no queues " + queue_name(segment, "c2d") +
                         " / -d2c)");
  std::fprintf(stderr, "boost-mq driver pid %ld: cleanup of %s removed %d queue names/temp files%s\n",
               static_cast<long>(::getpid()), segment.c_str(), removed, had_file ? " and the daemon file" : "");
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
  if (w.role != "reader" && w.slot_size > outbound().get_max_msg_size())
    fail("InvalidArgument", "slot_size " + std::to_string(w.slot_size) + " exceeds " + outbound_name() + "'s " +
                                std::to_string(outbound().get_max_msg_size()) + " bytes");
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
  try {
    if (workload_->role == "writer") writer_loop(*workload_);
    else consumer_loop(*workload_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "boost-mq driver: %s workload: %s\n", workload_->role.c_str(), e.what());
    std::_Exit(1);
  } catch (const Failure& f) {
    std::fprintf(stderr, "boost-mq driver: %s workload: %s: %s\n", workload_->role.c_str(), f.code.c_str(), f.detail.c_str());
    std::_Exit(1);
  }
  ::close(workload_->fd);
  std::exit(0);
}

// D-WORKLOAD writer: Intent, try_send, Ack (position 0: Boost has none) or
// Fail, paced at `rate` messages per second (0: unpaced).
void Driver::writer_loop(const Workload& w) {
  std::mt19937_64 rng(w.seed * 1000003 + w.writer);
  std::uniform_int_distribution<int> pick_priority(0, 2);
  std::uniform_int_distribution<std::size_t> pick_length(kMinPayload, w.slot_size);
  std::uint64_t n[3] = {};
  const std::uint64_t gap_ns = w.rate > 0 ? 1'000'000'000ULL / w.rate : 0;
  while (!g_term) {
    const auto p = static_cast<std::uint8_t>(pick_priority(rng));
    const MessageId id{0, w.writer, p, n[p]++};
    put(w.fd, record('I', id));
    const bool sent = send_now(p, encode_payload(id, pick_length(rng)));
    put(w.fd, record(sent ? 'A' : 'F', id));
    if (!sent) pause_ns(1'000'000);  // Full: give the daemon a moment
    pause_ns(gap_ns);
  }
}

// D-WORKLOAD reader (d2c) and daemon (c2d, answering on d2c). Receives with
// short deadlines so that SIGTERM is noticed within kWorkloadSlice.
void Driver::consumer_loop(const Workload& w) {
  const bool daemon = role_ == Role::Daemon;
  const std::uint8_t stream = daemon ? 0 : 1;
  std::mt19937_64 rng(w.seed ^ (epoch_ * 0x9E3779B97F4A7C15ULL));
  std::uniform_int_distribution<std::size_t> pick_length(kMinPayload, w.slot_size);
  std::uint64_t answer_n[3] = {};
  if (daemon) {
    Record s = record('S', MessageId{});
    s.n = epoch_;
    s.position = takeover_ ? 1 : 0;
    put(w.fd, s);
  }
  while (!g_term) {
    const std::uint64_t t = monotonic_ns();  // D-RECORD: Deliver's time is before the read began
    std::optional<Message> m;
    try {
      m = take(kWorkloadSlice);
    } catch (const Failure&) {  // a message this driver cannot have written
      put(w.fd, record('C', MessageId{stream}));
      continue;
    }
    if (!m) continue;
    MessageId id;
    const bool intact = decode_payload(m->data, id) && id.stream == stream && id.priority == m->priority;
    Record r = record(intact ? 'D' : 'C', id);
    r.t_ns = t;
    r.epoch = daemon ? epoch_ : 0;
    put(w.fd, r);
    if (!daemon || !intact) continue;
    // Answer on the same priority, as the daemon of epoch `epoch_`.
    const MessageId aid{1, static_cast<std::uint32_t>(epoch_), id.priority, answer_n[id.priority]++};
    put(w.fd, record('I', aid));
    const bool sent = send_now(aid.priority, encode_payload(aid, pick_length(rng)));
    put(w.fd, record(sent ? 'A' : 'F', aid));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::milliseconds poll{0};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--poll-ms" && i + 1 < argc) {
      poll = std::chrono::milliseconds(std::max(1, std::atoi(argv[++i])));
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: %s [--poll-ms N]\n\nBoost.Interprocess message_queue as a conformance driver: speaks\n"
          "conformance/DRIVER.md on stdin/stdout. --poll-ms N: wait by polling every N ms.\n",
          argv[0]);
      return 0;
    } else if (arg == "--version" || arg == "-V") {
      std::printf("memlink-driver-boost-mq %s (driver protocol %d, Boost %s)\n", kDriverVersion, kProtocol,
                  BOOST_LIB_VERSION);
      return 0;
    } else {
      std::fprintf(stderr, "usage: %s [--poll-ms N]\n", argv[0]);
      return 2;
    }
  }
  Driver driver(poll);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // replace: a detail holding invalid UTF-8 (from e.what()) must not throw.
    std::cout << driver.serve(line).dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    if (driver.workload_pending()) driver.run_workload();
  }
  return 0;  // EOF: leave the queues as they are (a later daemon takes them over)
}
