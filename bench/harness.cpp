#include "harness.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/version.hpp"

namespace memlink::bench {

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

void Samples::report(benchmark::State& state) {
  if (ns_.empty()) return;
  std::sort(ns_.begin(), ns_.end());
  auto at = [&](double q) { return static_cast<double>(shm::nearest_rank(ns_, q)); };
  double sum = 0;
  for (auto v : ns_) sum += static_cast<double>(v);
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p999_ns"] = at(0.999);
  state.counters["max_ns"] = static_cast<double>(ns_.back());
  state.counters["rt_per_s"] = sum > 0 ? 1e9 * static_cast<double>(ns_.size()) / sum : 0;
  state.counters["samples"] = static_cast<double>(ns_.size());
}

namespace {
int cpu_from_env(int which) {
  const char* e = std::getenv("MEMLINK_BENCH_CPUS");
  if (e == nullptr) return -1;
  std::string s(e);
  const auto comma = s.find(',');
  if (comma == std::string::npos) return -1;
  try {
    return std::stoi(which == 0 ? s.substr(0, comma) : s.substr(comma + 1));
  } catch (...) {
    return -1;
  }
}
void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)::sched_setaffinity(0, sizeof set, &set);
}
}  // namespace

void pin_parent() { pin(cpu_from_env(0)); }
void pin_child() { pin(cpu_from_env(1)); }

pid_t fork_child(const std::function<void()>& child) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    pin_child();
    ::alarm(300);  // never outlive a broken run
    child();
    ::_exit(0);
  }
  return pid;
}

void reap_child(pid_t pid, int grace_ms) {
  if (pid <= 0) return;
  for (int waited = 0; waited < grace_ms; waited += 5) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

void* shared_anonymous(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

int bench_main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--version") == 0 || std::strcmp(argv[i], "-V") == 0) {
      std::printf("%s %s (layout version %u, Google Benchmark)\n", std::filesystem::path(argv[0]).filename().c_str(),
                  MEMLINK_SHM_VERSION, static_cast<unsigned>(shm::LAYOUT_VERSION));
      return 0;
    }
  add_context();
  benchmark::Initialize(&argc, argv);  // --help: prints Google Benchmark's flags, exits 0
  // An unknown flag is a usage error (README: exit 2), not a failed run.
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

void add_context() {
  static bool done = false;
  if (done) return;
  done = true;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown";
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  ::uname(&u);
  std::string os = "unknown";
  std::ifstream osr("/etc/os-release");
  while (std::getline(osr, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) os = line.substr(13, line.size() - 14);
  benchmark::AddCustomContext("cpu_model", model);
  benchmark::AddCustomContext("kernel", std::string(u.sysname) + " " + u.release + " " + u.machine);
  benchmark::AddCustomContext("os", os);
#if defined(__clang__)
  benchmark::AddCustomContext("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  benchmark::AddCustomContext("compiler", "gcc " __VERSION__);
#endif
  const char* cpus = std::getenv("MEMLINK_BENCH_CPUS");
  benchmark::AddCustomContext("pinned_cpus", cpus != nullptr ? cpus : "none");
  benchmark::AddCustomContext("online_cpus", std::to_string(std::thread::hardware_concurrency()));
}

}  // namespace memlink::bench
