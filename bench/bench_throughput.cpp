// One-way throughput: producer processes write as fast as they can, one
// consumer reads; messages per second by payload and number of producers,
// beside the floor (a bare ring in shared memory, bare_ring.hpp), a pipe and
// a Boost.Interprocess message_queue with one producer.
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <new>
#include <optional>
#include <thread>
#include <vector>

#include "bare_ring.hpp"
#include "harness.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::bench {
namespace {

namespace shm = memlink::shm;
constexpr std::uint64_t kBatch = 20000;  // messages per producer per iteration

// Producers wait for `go` to reach their batch number, write kBatch
// messages, and stop when `stop` is set.
struct Control {
  std::atomic<std::uint64_t> go{0};
  std::atomic<int> stop{0};
};

void memlink_throughput(benchmark::State& state) {
  add_context();
  pin_parent();
  const auto payload = static_cast<std::size_t>(state.range(0));
  const int producers = static_cast<int>(state.range(1));
  const std::string path = "/dev/shm/memlink-bench-tp-" + std::to_string(::getpid());
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  shm::DaemonOptions o;
  o.endpoint.wait_strategy = shm::WaitStrategy::Adaptive;
  auto d = shm::Daemon::create(path, 4 << 20, 1, o);
  if (!d) {
    state.SkipWithError(d.error().message().c_str());
    return;
  }
  auto* ctl = new (shared_anonymous(sizeof(Control))) Control{};
  std::vector<pid_t> kids;
  for (int p = 0; p < producers; ++p)
    kids.push_back(fork_child([&] {
      auto c = shm::Client::connect(path, 1);
      if (!c) return;
      std::vector<std::byte> msg(payload, std::byte{1});
      for (std::uint64_t batch = 1;; ++batch) {
        while (ctl->go.load(std::memory_order_acquire) < batch) {
          if (ctl->stop.load(std::memory_order_relaxed)) return;
          std::this_thread::sleep_for(std::chrono::microseconds(50));  // leave the CPUs to the others
        }
        for (std::uint64_t i = 0; i < kBatch; ++i) {
          // Exactly one copy of each message: write, and on Full wait for room.
          auto w = c->write(shm::Priority::Low, msg);
          while (!w && (w.code() == shm::ErrorCode::Full || w.code() == shm::ErrorCode::Timeout))
            w = c->write_blocking(shm::Priority::Low, msg, std::chrono::seconds(1));
          if (!w) return;
        }
      }
    }));
  std::vector<std::byte> buf(shm::MAX_SLOT_SIZE);
  const std::uint64_t want = kBatch * static_cast<std::uint64_t>(producers);
  for (auto _ : state) {
    ctl->go.fetch_add(1, std::memory_order_release);
    for (std::uint64_t got = 0; got < want;) {
      if (d->read(buf)) {
        ++got;
      } else {
        (void)d->wait(std::chrono::seconds(1));
      }
    }
  }
  ctl->stop.store(1);
  for (pid_t k : kids) reap_child(k);
  d->shutdown();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * want));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * want * payload));
}

// The floor: one producer process, one consumer, a bare ring (no checksum,
// no recovery); a full or empty ring is polled.
void floor_bare_ring_throughput(benchmark::State& state) {
  add_context();
  pin_parent();
  const auto payload = static_cast<std::size_t>(state.range(0));
  auto* ring = new (shared_anonymous(sizeof(BareRing))) BareRing{};
  auto* ctl = new (shared_anonymous(sizeof(Control))) Control{};
  const pid_t kid = fork_child([&] {
    std::vector<std::byte> msg(payload, std::byte{1});
    std::uint64_t cached_tail = 0;
    for (std::uint64_t batch = 1;; ++batch) {
      while (ctl->go.load(std::memory_order_acquire) < batch) {
        if (ctl->stop.load(std::memory_order_relaxed)) return;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      for (std::uint64_t i = 0; i < kBatch; ++i)
        for (unsigned idle = 0; !ring->write(cached_tail, msg);) BareRing::wait_a_little(idle);
    }
  });
  std::vector<std::byte> buf(shm::MAX_SLOT_SIZE);
  std::uint64_t cached_head = 0;
  for (auto _ : state) {
    ctl->go.fetch_add(1, std::memory_order_release);
    unsigned idle = 0;
    for (std::uint64_t got = 0; got < kBatch;) {
      if (ring->read(cached_head, buf) >= 0) {
        ++got;
        idle = 0;
      } else {
        BareRing::wait_a_little(idle);
      }
    }
  }
  ctl->stop.store(1);
  reap_child(kid);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBatch * payload));
}

void pipe_throughput(benchmark::State& state) {
  add_context();
  pin_parent();
  const auto payload = static_cast<std::size_t>(state.range(0));
  int fds[2];
  if (::pipe(fds) != 0) {
    state.SkipWithError("pipe failed");
    return;
  }
  auto* ctl = new (shared_anonymous(sizeof(Control))) Control{};
  const pid_t kid = fork_child([&] {
    ::close(fds[0]);
    std::vector<char> msg(payload, 'x');
    for (std::uint64_t batch = 1;; ++batch) {
      while (ctl->go.load(std::memory_order_acquire) < batch) {
        if (ctl->stop.load(std::memory_order_relaxed)) return;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      for (std::uint64_t i = 0; i < kBatch; ++i)
        if (::write(fds[1], msg.data(), payload) != static_cast<ssize_t>(payload)) return;
    }
  });
  ::close(fds[1]);
  std::vector<char> buf(payload * 64);
  for (auto _ : state) {
    ctl->go.fetch_add(1, std::memory_order_release);
    for (std::uint64_t bytes = 0; bytes < kBatch * payload;) {
      const ssize_t r = ::read(fds[0], buf.data(), buf.size());
      if (r <= 0) break;
      bytes += static_cast<std::uint64_t>(r);
    }
  }
  ctl->stop.store(1);
  ::close(fds[0]);
  reap_child(kid);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void boost_mq_throughput(benchmark::State& state) {
  using mq = boost::interprocess::message_queue;
  add_context();
  pin_parent();
  const auto payload = static_cast<std::size_t>(state.range(0));
  const std::string name = "memlink-bench-tpmq-" + std::to_string(::getpid());
  mq::remove(name.c_str());
  std::optional<mq> q;
  q.emplace(boost::interprocess::create_only, name.c_str(), 256, payload);
  auto* ctl = new (shared_anonymous(sizeof(Control))) Control{};
  const pid_t kid = fork_child([&] {
    mq out(boost::interprocess::open_only, name.c_str());
    std::vector<char> msg(payload, 'x');
    for (std::uint64_t batch = 1;; ++batch) {
      while (ctl->go.load(std::memory_order_acquire) < batch) {
        if (ctl->stop.load(std::memory_order_relaxed)) return;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      for (std::uint64_t i = 0; i < kBatch; ++i) out.send(msg.data(), payload, 0);
    }
  });
  std::vector<char> buf(payload);
  for (auto _ : state) {
    ctl->go.fetch_add(1, std::memory_order_release);
    for (std::uint64_t i = 0; i < kBatch; ++i) {
      std::size_t got = 0;
      unsigned prio = 0;
      q->receive(buf.data(), payload, got, prio);
    }
  }
  ctl->stop.store(1);
  reap_child(kid);
  q.reset();
  mq::remove(name.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

}  // namespace

BENCHMARK(memlink_throughput)
    ->ArgsProduct({{64, 1024, 4096}, {1, 2, 4}})
    ->ArgNames({"payload", "producers"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(floor_bare_ring_throughput)->Arg(64)->Arg(1024)->Arg(4096)->ArgName("payload")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(pipe_throughput)->Arg(64)->ArgName("payload")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(boost_mq_throughput)->Arg(64)->ArgName("payload")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace memlink::bench

int main(int argc, char** argv) { return memlink::bench::bench_main(argc, argv); }
