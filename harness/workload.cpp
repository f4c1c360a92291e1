#include "workload.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::chaos {
namespace {

using namespace std::chrono_literals;
namespace shm = memlink::shm;

volatile sig_atomic_t g_term = 0;
void on_term(int) { g_term = 1; }

void setup_child(const Arm& arm) {
  stop_on_sigterm();
  if (arm.point.empty()) return;
  if (!arm.pause) {
    shm::arm_crash_point(arm.point, arm.occurrence);
    return;
  }
  if (!arm.pause_dir.empty()) ::setenv("MEMLINK_PAUSE_DIR", arm.pause_dir.c_str(), 1);
  shm::arm_pause_point(arm.point, arm.occurrence, nullptr, nullptr);
}

void put(int fd, const Record& r) { (void)!::write(fd, &r, sizeof r); }

Record rec(RecordType t, const MessageId& id) { return Record::of(t, id, shm::platform::monotonic_ns()); }

[[noreturn]] void die(const char* who, const shm::Error& e) {
  std::fprintf(stderr, "memlink-chaos %s pid %u: %s\n", who, shm::platform::current_pid(), e.message().c_str());
  ::_exit(kExitSetup);
}

shm::EndpointOptions client_options(const ProcessConfig& c) {
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Adaptive;
  o.daemon_timeout = std::chrono::milliseconds(c.heartbeat_timeout_ms);
  o.recovery.stale_after = 10ms;
  o.recovery.claim_timeout = std::chrono::milliseconds(c.claim_timeout_ms);
  return o;
}

shm::Client connect(const ProcessConfig& c, const char* who) {
  for (int i = 0;; ++i) {
    auto cl = shm::Client::connect(c.segment, 1, client_options(c));
    if (cl) return std::move(cl.value());
    if (i == 500) die(who, cl.error());
    std::this_thread::sleep_for(10ms);
  }
}

std::size_t length_for(std::mt19937_64& rng, std::uint32_t slot_size) {
  return std::uniform_int_distribution<std::size_t>(kMinPayload, slot_size)(rng);
}

// SPEC T-LOAN: every other message is sent through a loan and every other
// take is a view, so kill -9 and the crash points land in loans and views
// as often as in write and take (a writer killed holding a loan is a dead
// writer, K-WRITING; a view is a take, K-READING).
shm::Result<shm::SlotId> send(shm::Endpoint& ep, shm::Priority p, const std::vector<std::byte>& payload, bool by_loan) {
  if (!by_loan) return ep.write(p, payload);
  auto loan = ep.loan(p, payload.size());
  if (!loan) return loan.error();
  if (!payload.empty()) std::memcpy(loan->slot.bytes.data(), payload.data(), payload.size());
  return ep.commit(*loan, payload.size());
}

struct Taken {
  shm::MessageInfo info;
  std::span<const std::byte> bytes;  // the copy in the caller's buffer, or the view
};

shm::Result<Taken> take_one(shm::Endpoint& ep, std::vector<std::byte>& buf, bool as_view) {
  if (as_view) {
    auto v = ep.take_view();
    if (!v) return v.error();
    return Taken{v->info, v->bytes};
  }
  auto m = ep.take(buf);
  if (!m) return m.error();
  return Taken{*m, std::span<const std::byte>(buf.data(), m->length)};
}

}  // namespace

void stop_on_sigterm() {
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
}

shm::EndpointOptions chaos_endpoint_options(const ProcessConfig& c) { return client_options(c); }

void run_daemon(const ProcessConfig& c, int fd, const Arm& arm) {
  setup_child(arm);
  shm::DaemonOptions o;
  o.slot_size = c.slot_size;
  o.remove_on_shutdown = false;
  o.heartbeat_interval = std::chrono::milliseconds(c.heartbeat_ms);
  o.heartbeat_timeout = std::chrono::milliseconds(c.heartbeat_timeout_ms);
  o.endpoint = client_options(c);
  o.age = c.age;
  std::optional<shm::Result<shm::Daemon>> created;
  for (int i = 0;; ++i) {
    created.emplace(shm::Daemon::create(c.segment, c.segment_size, 1, o));
    // AlreadyExists: a predecessor's heartbeat has not gone stale yet.
    if (created->ok() || created->code() != shm::ErrorCode::AlreadyExists || i == 300) break;
    std::this_thread::sleep_for(10ms);
  }
  if (!*created) die("daemon", created->error());
  serve_as_daemon(**created, c, fd);
}

namespace {

// The daemon's record of a message it took (Deliver, or Corrupt when the
// payload fails its own check), then its finish: the message's id when it
// is intact and to be answered.
std::optional<MessageId> record_delivery(shm::Daemon& d, const Taken& taken, std::uint64_t t, std::uint64_t epoch,
                                         int fd) {
  const shm::MessageInfo& m = taken.info;
  MessageId id;
  const bool intact = decode_payload(taken.bytes, id) && id.stream == Stream::C2D &&
                      id.priority == static_cast<std::uint8_t>(m.priority);
  Record r = rec(intact ? RecordType::Deliver : RecordType::Corrupt, id);
  r.t_ns = t;
  r.position = m.slot.position;
  r.epoch = epoch;
  r.sequence = m.sequence;
  put(fd, r);
  shm::crash_point("daemon.after-record");
  (void)d.finish(m);
  if (!intact) return std::nullopt;
  return id;
}

}  // namespace

void serve_as_daemon(shm::Daemon& d, const ProcessConfig& c, int fd) {
  const std::uint64_t epoch = d.start_info().epoch;
  Record serving;
  serving.type = RecordType::Serving;
  serving.n = epoch;
  serving.t_ns = shm::platform::monotonic_ns();
  serving.position = static_cast<std::uint64_t>(d.start_info().kind);
  put(fd, serving);

  std::mt19937_64 rng(c.seed ^ (epoch * 0x9E3779B97F4A7C15ULL));
  std::uint64_t answer_n[shm::kPriorityCount] = {};
  std::vector<std::byte> buf(c.slot_size);
  auto fenced = [&] {
    Record x;
    x.type = RecordType::Fenced;
    x.n = epoch;
    x.t_ns = shm::platform::monotonic_ns();
    put(fd, x);
    ::_exit(kExitFenced);
  };
  std::uint64_t takes = 0;
  while (!g_term) {
    const std::uint64_t t = shm::platform::monotonic_ns();
    auto taken = take_one(d, buf, (takes++ & 1) != 0);
    if (taken) {
      const std::optional<MessageId> id = record_delivery(d, *taken, t, epoch, fd);
      if (!id) continue;
      // Answer on the same priority (acknowledged answers must reach the reader).
      const MessageId aid{Stream::D2C, static_cast<std::uint32_t>(epoch), id->priority, answer_n[id->priority]++};
      put(fd, rec(RecordType::Intent, aid));
      auto w = send(d, static_cast<shm::Priority>(aid.priority), encode_payload(aid, length_for(rng, c.slot_size)),
                    (aid.n & 1) != 0);
      Record a = rec(w ? RecordType::Ack : RecordType::Fail, aid);
      if (w) a.position = w->position;
      put(fd, a);
      continue;
    }
    switch (taken.code()) {
      case shm::ErrorCode::Disconnected:
        if (d.fenced()) fenced();
        die("daemon", taken.error());
      case shm::ErrorCode::CorruptSegment: {
        Record r = rec(RecordType::Corrupt, MessageId{});
        r.epoch = epoch;
        put(fd, r);
        std::fprintf(stderr, "memlink-chaos daemon: %s\n", taken.error().message().c_str());
        break;
      }
      case shm::ErrorCode::Empty:
        if (auto s = d.wait(50ms); !s && s.code() == shm::ErrorCode::Disconnected && d.fenced()) fenced();
        break;
      default:  // InvalidState: a live, fenced predecessor still holds the tail slot
        std::this_thread::sleep_for(1ms);
        break;
    }
  }
  d.shutdown();
  ::_exit(kExitClean);
}

void run_writer(const ProcessConfig& c, int fd, std::uint32_t writer_id, const Arm& arm) {
  setup_child(arm);
  shm::Client cl = connect(c, "writer");
  write_as_client(cl, c, fd, writer_id);
}

void write_as_client(shm::Client& cl, const ProcessConfig& c, int fd, std::uint32_t writer_id) {
  std::mt19937_64 rng(c.seed * 1000003 + writer_id);
  std::uint64_t n[shm::kPriorityCount] = {};
  const auto gap = std::chrono::nanoseconds(c.rate > 0 ? 1'000'000'000ULL / c.rate : 0);
  std::uint32_t burst = 0;
  while (!g_term) {
    const auto p = static_cast<std::uint8_t>(std::uniform_int_distribution<int>(0, 2)(rng));
    const MessageId id{Stream::C2D, writer_id, p, n[p]++};
    put(fd, rec(RecordType::Intent, id));
    auto w = send(cl, static_cast<shm::Priority>(p), encode_payload(id, length_for(rng, c.slot_size)), (id.n & 1) != 0);
    Record r = rec(w ? RecordType::Ack : RecordType::Fail, id);
    if (w) r.position = w->position;
    put(fd, r);
    if (!w && w.code() == shm::ErrorCode::Full) std::this_thread::sleep_for(1ms);
    // Mostly paced, sometimes a burst that fills the rings (backpressure).
    if (burst > 0) {
      --burst;
    } else if (std::uniform_int_distribution<int>(0, 2000)(rng) == 0) {
      burst = 300;
    } else {
      std::this_thread::sleep_for(gap);
    }
  }
  cl.shutdown();
  ::_exit(kExitClean);
}

void run_reader(const ProcessConfig& c, int fd, const Arm& arm) {
  setup_child(arm);
  shm::Client cl = connect(c, "reader");
  read_as_client(cl, c, fd);
}

void read_as_client(shm::Client& cl, const ProcessConfig& c, int fd) {
  std::vector<std::byte> buf(c.slot_size);
  std::uint64_t takes = 0;
  while (!g_term) {
    const std::uint64_t t = shm::platform::monotonic_ns();
    auto taken = take_one(cl, buf, (takes++ & 1) != 0);
    if (taken) {
      const shm::MessageInfo* m = &taken->info;
      MessageId id;
      const bool intact = decode_payload(taken->bytes, id) && id.stream == Stream::D2C &&
                          id.priority == static_cast<std::uint8_t>(m->priority);
      Record r = rec(intact ? RecordType::Deliver : RecordType::Corrupt, id);
      r.t_ns = t;
      r.position = m->slot.position;
      r.sequence = m->sequence;
      put(fd, r);
      (void)cl.finish(*m);
      continue;
    }
    if (taken.code() == shm::ErrorCode::CorruptSegment) {
      put(fd, rec(RecordType::Corrupt, MessageId{Stream::D2C}));
      std::fprintf(stderr, "memlink-chaos reader: %s\n", taken.error().message().c_str());
    } else if (taken.code() == shm::ErrorCode::Empty) {
      if (!cl.wait(50ms)) std::this_thread::sleep_for(2ms);  // Disconnected while the daemon is down
    } else {
      std::this_thread::sleep_for(2ms);  // the reader token is still held by a dying predecessor
    }
  }
  cl.shutdown();
  ::_exit(kExitClean);
}

}  // namespace memlink::chaos
