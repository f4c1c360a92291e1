// What every benchmark program here shares: round-trip samples with tails,
// a pair of processes (pinned to CPUs when asked), and the run's context.
//
// Every round-trip row reports, as Google Benchmark counters, the median,
// 99th and 99.9th percentile of the round trip in ns (from a sample of every
// iteration, not the mean) and round trips per second.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace memlink::bench {

// Round-trip times of one benchmark run.
class Samples {
 public:
  void reserve(std::size_t n) { ns_.reserve(n); }
  void add(std::uint64_t ns) { ns_.push_back(ns); }
  // Sets p50_ns, p99_ns, p999_ns, max_ns and rt_per_s on the state.
  void report(benchmark::State& state);

 private:
  std::vector<std::uint64_t> ns_;
};

std::uint64_t now_ns();

// MEMLINK_BENCH_CPUS="a,b": the parent runs on CPU a, the child on CPU b.
// Nothing is pinned when unset.
void pin_parent();
void pin_child();

// Forks `child` (which must not return; it runs until killed or its peer
// says stop) and returns its pid. The child is pinned (pin_child).
pid_t fork_child(const std::function<void()>& child);
// Waits for the child; SIGKILLs it if it does not exit within `grace_ms`.
void reap_child(pid_t pid, int grace_ms = 2000);

// Shared anonymous memory that survives fork (for the bare floors).
void* shared_anonymous(std::size_t bytes);

// CPU, kernel, OS, compiler, pinning: put into the JSON context once. Must
// run before the benchmarks do (the context is written first): every
// program's main is MEMLINK_BENCH_MAIN.
void add_context();

// Google Benchmark's main, with add_context() first.
int bench_main(int argc, char** argv);

}  // namespace memlink::bench
