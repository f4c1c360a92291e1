// Wait and wake across processes (reference library, SPEC F-*, T-WAIT,
// T-BLOCKING, T-SHUTDOWN). Every sleep is sliced, so a lost wake-up still
// "works": the sleeper wakes when its slice ends and the read succeeds. This
// check makes the slice long (kSlice) on both sides, so that a wake-up that
// arrived only because a slice ran out cannot pass for latency: any wait
// that lasts half a slice is a lost wake-up (a healthy wake-up on a loaded
// machine takes milliseconds, not seconds).
//   1. round trips: a client writes, the daemon (a forked process, asleep
//      on its futex) echoes, the client (asleep on its own) reads;
//   2. a burst through full rings: the client writes faster than it reads,
//      so the daemon's echo blocks on a full d2c ring and the client's
//      writes block on a full c2d ring; every freed slot must wake the
//      blocked writer on the other side (T-BLOCKING);
//   3. shutdown wakes every sleeper: two writers blocked on one full ring
//      both learn of the daemon's shutdown at once (T-SHUTDOWN);
//   4. kill -9 of the daemon: writes still land (T-KILLED) and wait reports
//      Disconnected (T-WAIT).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "memlink/shm/platform.hpp"
#include "memlink/shm/transport.hpp"
#include "suite.hpp"

namespace memlink::conformance {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kSlice = 3s;              // the sleep slice on both sides
constexpr auto kLost = kSlice / 2;       // a wait this long was ended by a slice
constexpr std::size_t kBurst = 400;      // messages of phase 2

Failure failure(const std::string& clause, const std::string& what, const Params& p) {
  return Failure{clause, "[" + clause + "] " + what, {},
                 "scripts/conformance --only wakeup --seed " + std::to_string(p.seed)};
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

shm::EndpointOptions endpoint_options() {
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Block;
  o.sleep_slice = kSlice;
  o.daemon_timeout = 60s;  // liveness is not what this check is about
  return o;
}

// The daemon process: echoes every message, blocking when d2c is full.
[[noreturn]] void serve(const std::string& path, int ready_fd) {
  shm::DaemonOptions o;
  o.endpoint = endpoint_options();
  o.remove_on_shutdown = false;
  auto d = shm::Daemon::create(path, shm::DEFAULT_SEGMENT_SIZE, 1, o);
  const char ok = d ? 1 : 0;
  (void)::write(ready_fd, &ok, 1);
  if (!d) ::_exit(2);
  std::vector<std::byte> buf(d->geometry().slot_size);
  for (;;) {
    (void)d->wait(10s);
    while (auto m = d->read(buf)) (void)d->write_blocking(m->priority, std::span(buf.data(), m->length), 30s);
  }
}

std::span<const std::byte> bytes_of(const std::uint64_t& id) { return {reinterpret_cast<const std::byte*>(&id), sizeof id}; }

// Reads one message, sleeping for it; its id, and how long the wait took.
struct Delivery {
  std::optional<std::uint64_t> id;
  Clock::duration waited{};
  std::string error;
};
Delivery receive(shm::Client& c, std::vector<std::byte>& buf) {
  Delivery d;
  const auto t0 = Clock::now();
  for (;;) {
    if (auto m = c.read(buf)) {
      std::uint64_t id = 0;
      std::memcpy(&id, buf.data(), sizeof id);
      d.id = id;
      break;
    }
    record_clause("F-WAKE");
    if (auto s = c.wait(10s); !s) {
      d.error = s.error().message();
      break;
    }
  }
  d.waited = Clock::now() - t0;
  return d;
}

// Phase 3, in this process: two writers blocked on one full ring; the
// daemon shuts down; both must return Disconnected at once.
std::optional<Failure> shutdown_wakes_every_sleeper(const Params& params, std::string& note) {
  static std::atomic<int> counter{0};
  const std::string path = "/dev/shm/memlink-wakeup-sd-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  shm::DaemonOptions o;
  o.endpoint = endpoint_options();
  o.slot_size = 64;
  const std::size_t size = shm::CONTROL_REGION_SIZE + 2 * (3 * shm::RING_HEADER_SIZE + 3 * shm::slot_stride_for(64));
  auto d = shm::Daemon::create(path, size, 1, o);
  if (!d) return failure("T-SHUTDOWN", "daemon: " + d.error().message(), params);
  auto c = shm::Client::connect(path, 1, endpoint_options());
  if (!c) return failure("T-SHUTDOWN", "connect: " + c.error().message(), params);
  const std::uint64_t one = 1;
  if (!c->write(shm::Priority::High, bytes_of(one))) return failure("T-SHUTDOWN", "could not fill the ring", params);
  Clock::time_point returned_at[2]{};
  std::string results[2];
  std::vector<std::thread> writers;
  for (int i = 0; i < 2; ++i)
    writers.emplace_back([&, i] {
      auto r = c->write_blocking(shm::Priority::High, bytes_of(one), 20s);
      returned_at[i] = Clock::now();
      results[i] = r ? "Ok" : std::string(shm::to_string(r.code()));
    });
  // Both asleep on the c2d space word before the shutdown.
  const auto give_up = Clock::now() + 10s;
  while (c->control().c2d_space_futex.waiters.load() < 2 && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
  const bool both_slept = c->control().c2d_space_futex.waiters.load() >= 2;
  const auto t_shutdown = Clock::now();
  d->shutdown();
  for (auto& t : writers) t.join();
  c->shutdown();
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  record_clause("T-SHUTDOWN");
  if (!both_slept) return std::nullopt;  // the two sleeps could not be arranged: nothing to judge (noted)
  Clock::duration last{};
  for (int i = 0; i < 2; ++i) {
    if (results[i] != "Disconnected")
      return failure("T-SHUTDOWN", "a writer blocked on a full ring returned " + results[i] + " when the daemon shut down",
                     params);
    const auto late = returned_at[i] - t_shutdown;
    last = std::max(last, late);
    if (late >= kLost)
      return failure("T-SHUTDOWN", "of two writers asleep on one full ring, one learned of the daemon's shutdown " +
                                       std::to_string(static_cast<long>(ms(late))) +
                                       " ms later, when its sleep slice ran out: shutdown must wake every sleeper",
                     params);
  }
  note = "both writers asleep on one full ring woke within " + std::to_string(static_cast<long>(ms(last))) +
         " ms of the shutdown";
  return std::nullopt;
}

}  // namespace

CheckResult run_wakeup(const Params& params) {
  CheckResult result;
  result.name = "wakeup";
  static std::atomic<int> counter{0};
  const std::string path = "/dev/shm/memlink-wakeup-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  const int rounds = params.depth == Depth::Quick ? 300 : params.depth == Depth::Default ? 3000 : 30000;
  int fds[2];
  if (::pipe(fds) != 0) {
    result.failure = failure("F-WORDS", "pipe() failed", params);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid == 0) serve(path, fds[1]);
  char ok = 0;
  const bool started = pid > 0 && ::read(fds[0], &ok, 1) == 1 && ok == 1;
  ::close(fds[0]);
  ::close(fds[1]);
  auto finish = [&](std::optional<Failure> f) {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
    result.failure = std::move(f);
    return result;
  };
  if (!started) return finish(failure("F-WORDS", "could not start the daemon process", params));
  auto client = shm::Client::connect(path, 1, endpoint_options());
  if (!client) return finish(failure("V-CONNECT", "connect: " + client.error().message(), params));

  // 1. Round trips.
  std::vector<std::byte> buf(client->geometry().slot_size);
  Clock::duration slowest{};
  for (int i = 0; i < rounds; ++i) {
    const auto p = static_cast<shm::Priority>(i % 3);
    const std::uint64_t id = 0xC0FFEE00000000ULL + static_cast<std::uint64_t>(i);
    const auto t0 = Clock::now();
    if (auto w = client->write(p, bytes_of(id)); !w)
      return finish(failure("T-ENDPOINTS", "write " + std::to_string(i) + ": " + w.error().message(), params));
    const Delivery got = receive(*client, buf);
    const auto rtt = Clock::now() - t0;
    slowest = std::max(slowest, rtt);
    if (!got.id)
      return finish(failure("F-WAKE", "round " + std::to_string(i) + ": no answer (" + got.error + ")", params));
    if (*got.id != id) return finish(failure("R-FIFO", "answer " + std::to_string(i) + " carries the wrong id", params));
    if (rtt >= kLost)
      return finish(failure("F-WAKE", "round " + std::to_string(i) + " took " + std::to_string(static_cast<long>(ms(rtt))) +
                                          " ms: a wake-up was lost and the sleeper woke only when its " +
                                          std::to_string(static_cast<long>(ms(kSlice))) + " ms sleep slice ran out",
                         params));
    ++result.cases;
  }

  // 2. A burst through full rings: a writer thread blocks on full c2d while
  //    the daemon blocks on full d2c; the reader frees d2c slots.
  std::atomic<bool> writer_done{false};
  std::string writer_error;
  std::thread writer([&] {
    for (std::size_t i = 0; i < kBurst && writer_error.empty(); ++i) {
      const std::uint64_t id = 0xB0B5000000000000ULL + i;
      if (auto w = client->write_blocking(shm::Priority::High, bytes_of(id), 20s); !w) writer_error = w.error().message();
    }
    writer_done.store(true);
  });
  std::this_thread::sleep_for(200ms);  // let both rings fill and both writers block
  Clock::duration longest_gap{};
  std::size_t burst_read = 0;
  std::string burst_failure;
  for (; burst_read < kBurst; ++burst_read) {
    record_clause("T-BLOCKING");
    const Delivery got = receive(*client, buf);
    if (!got.id) {
      burst_failure = "burst message " + std::to_string(burst_read) + " never came (" + got.error + ")";
      break;
    }
    if (*got.id != 0xB0B5000000000000ULL + burst_read) {
      burst_failure = "burst message " + std::to_string(burst_read) + " carries the wrong id";
      break;
    }
    if (burst_read > 0) longest_gap = std::max(longest_gap, got.waited);
    if (got.waited >= kLost) {
      burst_failure = "burst message " + std::to_string(burst_read) + " came " +
                      std::to_string(static_cast<long>(ms(got.waited))) +
                      " ms after the previous one: a writer blocked on a full ring was not woken when a slot was freed";
      break;
    }
  }
  writer.join();
  if (!burst_failure.empty()) return finish(failure("T-BLOCKING", burst_failure, params));
  if (!writer_error.empty()) return finish(failure("T-BLOCKING", "blocking write: " + writer_error, params));

  // T-WAIT with nothing to read.
  record_clause("F-WORDS");
  record_clause("T-WAIT");
  if (auto s = client->wait(20ms); s.code() != shm::ErrorCode::Timeout)
    return finish(failure("T-WAIT", "wait with nothing to read returned " +
                                        std::string(s.ok() ? "Ok" : shm::to_string(s.code())) + ", not Timeout", params));

  // 3. Shutdown wakes every sleeper.
  std::string shutdown_note;
  if (auto f = shutdown_wakes_every_sleeper(params, shutdown_note)) return finish(std::move(f));

  // 4. kill -9 of the daemon.
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  record_clause("T-KILLED");
  if (auto w = client->write(shm::Priority::Low, std::span(buf.data(), 8)); !w)
    return finish(failure("T-KILLED", "write after the daemon died: " + w.error().message(), params));
  if (auto s = client->wait(10s); s.code() != shm::ErrorCode::Disconnected)
    return finish(failure("T-WAIT", "wait after the daemon was killed returned " +
                                        std::string(s.ok() ? "Ok" : shm::to_string(s.code())) + ", not Disconnected", params));
  result.notes = std::to_string(rounds) + " cross-process round trips (slowest " + std::to_string(static_cast<long>(ms(slowest))) +
                 " ms; " + std::to_string(static_cast<long>(ms(kSlice))) + " ms sleep slices, so a lost wake-up shows), a " +
                 std::to_string(kBurst) + "-message burst through full rings (longest gap " +
                 std::to_string(static_cast<long>(ms(longest_gap))) + " ms), " +
                 (shutdown_note.empty() ? "shutdown with two sleepers not arranged" : shutdown_note) +
                 ", then kill -9 of the daemon";
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  return result;
}

}  // namespace memlink::conformance
