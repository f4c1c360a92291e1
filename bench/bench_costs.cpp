// What the design costs beside the round trip:
//  - priority routing: a write and a read through the three rings of one
//    direction (the reader scans Critical and High before finding Low)
//    against the same through one memlink ring, in one thread;
//  - the floor of those: a write and a read through a bare ring
//    (bare_ring.hpp: no checksum, no recovery), in one thread;
//  - the API's own cost: a client's write and the daemon's read through
//    the transport (rings, counters, wake checks), in one thread;
//  - idle: the CPU a daemon uses over a quiet second, per wait strategy
//    (measured from its rusage; it calls wait(100 ms) in a loop as a daemon does).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "bare_ring.hpp"
#include "harness.hpp"
#include "memlink/shm/pring.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::bench {
namespace {

namespace shm = memlink::shm;

void single_ring(benchmark::State& state) {
  auto ring = shm::RingBuffer::create_owned(1024, 64);
  std::vector<std::byte> msg(static_cast<std::size_t>(state.range(0)), std::byte{1}), buf(64);
  for (auto _ : state) {
    (void)ring->write_slot(msg);
    benchmark::DoNotOptimize(ring->read_slot(buf));
  }
  state.SetItemsProcessed(state.iterations());
}

void floor_bare_ring(benchmark::State& state) {
  auto ring = std::make_unique<BareRing>();
  std::vector<std::byte> msg(static_cast<std::size_t>(state.range(0)), std::byte{1}), buf(64);
  std::uint64_t cached_tail = 0, cached_head = 0;
  for (auto _ : state) {
    (void)ring->write(cached_tail, msg);
    benchmark::DoNotOptimize(ring->read(cached_head, buf));
  }
  state.SetItemsProcessed(state.iterations());
}

void priority_rings(benchmark::State& state) {
  shm::Geometry g = *shm::compute_geometry(1 << 20, 64);
  std::vector<std::byte> mem(g.segment_size + 64);
  auto* base = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(mem.data()) + 63) & ~std::uintptr_t{63});
  auto rings = shm::PriorityRingBuffer::format(base, g.segment_size, g, shm::Direction::ClientToDaemon);
  std::vector<std::byte> msg(static_cast<std::size_t>(state.range(0)), std::byte{1}), buf(64);
  for (auto _ : state) {
    (void)rings->write(shm::Priority::Low, msg);
    benchmark::DoNotOptimize(rings->read(buf));
  }
  state.SetItemsProcessed(state.iterations());
}

// What a message costs through the transport's API, in one thread: a
// client's write and the daemon's read of 64 B on one segment (the rings,
// plus the sequence number, the counters and the wake protocol's checks a
// message takes on the way). No other core is involved: the floor is
// single_ring.
void endpoint_write_read(benchmark::State& state) {
  const std::string path = "/dev/shm/memlink-bench-endpoint-" + std::to_string(::getpid());
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  auto daemon = shm::Daemon::create(path, 1 << 20, 1);
  if (!daemon) {
    state.SkipWithError(daemon.error().message().c_str());
    return;
  }
  auto client = shm::Client::connect(path, 1);
  if (!client) {
    state.SkipWithError(client.error().message().c_str());
    return;
  }
  std::vector<std::byte> msg(static_cast<std::size_t>(state.range(0)), std::byte{1}), buf(shm::MAX_SLOT_SIZE);
  for (auto _ : state) {
    (void)client->write(shm::Priority::Low, msg);
    benchmark::DoNotOptimize(daemon->read(buf));
  }
  state.SetItemsProcessed(state.iterations());
  client->shutdown();
  daemon->shutdown();
}

// User plus system CPU time of a rusage, in seconds.
double cpu_seconds(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// The CPU time this process has used so far (every thread: the heartbeat
// thread's stamps are part of what an idle daemon costs).
double process_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return cpu_seconds(ru);
}

// What an idle daemon costs: one second of wait() with no message, in a
// process of its own. Only that second is counted (cpu_percent); creating
// the segment, shutting down and the process's exit are reported apart
// (setup_cpu_ms): they are paid once, not per second idle, and on a host
// where page faults are dear they alone came near 1 % of the second.
void idle_daemon_cpu(benchmark::State& state) {
  add_context();
  const auto strategy = static_cast<shm::WaitStrategy>(state.range(0));
  auto* idle_cpu_s = new (shared_anonymous(sizeof(double))) double{-1};
  for (auto _ : state) {
    const std::string path = "/dev/shm/memlink-bench-idle-" + std::to_string(::getpid());
    (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
    *idle_cpu_s = -1;
    const pid_t kid = fork_child([&] {
      shm::DaemonOptions o;
      o.endpoint.wait_strategy = strategy;
      auto d = shm::Daemon::create(path, 1 << 20, 1, o);
      if (!d) return;
      const double cpu0 = process_cpu_seconds();
      const std::uint64_t end = now_ns() + 1'000'000'000ULL;
      while (now_ns() < end) (void)d->wait(std::chrono::milliseconds(100));
      *idle_cpu_s = process_cpu_seconds() - cpu0;
      d->shutdown();
    });
    int status = 0;
    rusage ru{};
    ::wait4(kid, &status, 0, &ru);
    if (*idle_cpu_s < 0) {
      state.SkipWithError("the idle daemon could not create its segment");
      break;
    }
    const double all_s = cpu_seconds(ru);                 // the child's whole life
    state.counters["cpu_percent"] = 100.0 * *idle_cpu_s;  // of the one idle second
    state.counters["setup_cpu_ms"] = 1e3 * (all_s - *idle_cpu_s);
  }
  state.SetLabel(std::string(shm::to_string(strategy)));
}

}  // namespace

BENCHMARK(floor_bare_ring)->Arg(64)->ArgName("payload");
BENCHMARK(single_ring)->Arg(64)->ArgName("payload");
BENCHMARK(priority_rings)->Arg(64)->ArgName("payload");
BENCHMARK(endpoint_write_read)->Arg(64)->ArgName("payload");
BENCHMARK(idle_daemon_cpu)
    ->Arg(static_cast<int>(shm::WaitStrategy::Spin))
    ->Arg(static_cast<int>(shm::WaitStrategy::Block))
    ->Arg(static_cast<int>(shm::WaitStrategy::Adaptive))
    ->ArgName("strategy")
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace memlink::bench

int main(int argc, char** argv) { return memlink::bench::bench_main(argc, argv); }
