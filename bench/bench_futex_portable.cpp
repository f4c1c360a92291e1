// Futex wake-up and round-trip latency with memlink's own wait/wake backend
// on whatever platform this is built for (Linux futex, macOS ulock, the
// Windows named semaphore), without Google Benchmark, so that it also builds
// with the mingw-w64 cross compiler and runs under Wine (scripts/test-windows).
//
// Every row is a ratio against the floor measured in the same run: two
// processes (or threads) spinning on a shared cache line.
//
//   bench_futex_portable [--smoke] [--iterations N] [--json FILE] [--help]
//
// --json writes Google Benchmark's JSON format with the counters of
// bench_roundtrip (p50_ns, p99_ns, p999_ns, max_ns, rt_per_s, samples;
// nearest-rank percentiles), so scripts/compare-latency reads it beside a
// scripts/bench run: the two process rows are named as bench_roundtrip's
// floors (roundtrip/floor_cache_line/8, roundtrip/floor_futex/8), the
// others round_trip/spin_threads, round_trip/memlink_futex_threads and
// wake_no_waiter/memlink_futex, the same on every platform.
//
// Under Wine it says so: those numbers are Wine's, not Windows'.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "child_process.hpp"
#include "memlink/shm/futex.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/version.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/utsname.h>
#include <unistd.h>
#endif

namespace {

using memlink::shm::Futex;
using memlink::shm::test::ChildProcess;
using memlink::shm::test::SharedFlags;
namespace platform = memlink::shm::platform;

// Words of the shared flags file. Each futex word has a count of sleepers
// beside it, used as the transport uses it (SPEC F-WAKE): a waker makes the
// system call only when someone sleeps.
enum Word : std::size_t {
  kPing = 0,
  kPong = 1,
  kReady = 2,
  kIterations = 3,
  kSpinMode = 4,
  kPingSleepers = 5,
  kPongSleepers = 6,
};

struct Row {
  Row(std::string n, std::string bench) : name(std::move(n)), benchmark(std::move(bench)) {}
  std::string name;
  std::string benchmark;  // its Google Benchmark name in --json
  std::string unit = "round trip";
  std::vector<std::uint64_t> samples_ns;
  // Nearest rank (memlink/shm/percentile.hpp), q in [0, 1]; 0 when empty.
  std::uint64_t percentile(double q) const { return memlink::shm::nearest_rank_unsorted(samples_ns, q); }
  std::uint64_t max() const { return samples_ns.empty() ? 0 : *std::max_element(samples_ns.begin(), samples_ns.end()); }
};

// One direction: the word, its sleeper count, and the futex on the word.
struct Channel {
  std::atomic<std::uint32_t>* word;
  std::atomic<std::uint32_t>* sleepers;
  Futex futex;
  Channel(SharedFlags& flags, Word w, Word s, const std::string& name)
      : word(flags.word(w)), sleepers(flags.word(s)), futex(flags.word(w), flags.path() + name) {}
};

// Waits until the word holds `value`: spinning, or asleep on the futex.
void await(Channel& c, std::uint32_t value, bool spin) {
  for (;;) {
    const std::uint32_t v = c.word->load(std::memory_order_acquire);
    if (v == value) return;
    if (spin) {
      platform::cpu_relax();
      continue;
    }
    c.sleepers->fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (c.word->load(std::memory_order_acquire) == v) (void)c.futex.wait(v, std::chrono::milliseconds(100));
    c.sleepers->fetch_sub(1, std::memory_order_relaxed);
  }
}

void publish(Channel& c, std::uint32_t value, bool spin) {
  c.word->store(value, std::memory_order_release);
  if (spin) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (const std::uint32_t n = c.sleepers->load(std::memory_order_relaxed); n != 0) (void)c.futex.wake(n);
}

// The echo side: answers ping i with pong i.
void echo(SharedFlags& flags, std::uint32_t iterations, bool spin) {
  Channel ping(flags, kPing, kPingSleepers, "#ping");
  Channel pong(flags, kPong, kPongSleepers, "#pong");
  for (std::uint32_t i = 1; i <= iterations; ++i) {
    await(ping, i, spin);
    publish(pong, i, spin);
  }
}

// The timing side: one sample per round trip.
Row ping_pong(const std::string& name, const std::string& bench, SharedFlags& flags, std::uint32_t iterations,
              bool spin) {
  Channel ping(flags, kPing, kPingSleepers, "#ping");
  Channel pong(flags, kPong, kPongSleepers, "#pong");
  Row row(name, bench);
  row.samples_ns.reserve(iterations);
  for (std::uint32_t i = 1; i <= iterations; ++i) {
    const std::uint64_t t0 = platform::monotonic_ns();
    publish(ping, i, spin);
    await(pong, i, spin);
    row.samples_ns.push_back(platform::monotonic_ns() - t0);
  }
  return row;
}

// args: FLAGS. The echo process.
MEMLINK_CHILD_ROLE(echo_role, "futex-echo") {
  if (args.size() != 1) return 2;
  auto flags = SharedFlags::open(args[0]);
  flags.set(kReady, 1);
  echo(flags, flags.get(kIterations), flags.get(kSpinMode) != 0);
  return 0;
}

std::string temp_flags_path(const std::string& tag) {
#if defined(_WIN32)
  return platform::shm_directory() + "\\memlink-bench-" + tag + "-" + std::to_string(platform::current_pid());
#else
  return platform::shm_directory() + "/memlink-bench-" + tag + "-" + std::to_string(platform::current_pid());
#endif
}

// Removes a leftover of a killed run, then creates the file.
SharedFlags fresh_flags(const std::string& path) {
  (void)memlink::shm::MmapSegment::remove(path);
  return SharedFlags::create(path);
}

struct FlagsFile {
  std::string path;
  SharedFlags flags;
  explicit FlagsFile(const std::string& tag) : path(temp_flags_path(tag)), flags(fresh_flags(path)) {}
  ~FlagsFile() { (void)memlink::shm::MmapSegment::remove(path); }
};

Row processes(const std::string& name, const std::string& bench, std::uint32_t iterations, bool spin) {
  FlagsFile f(spin ? "spin" : "futex");
  f.flags.set(kIterations, iterations);
  f.flags.set(kSpinMode, spin ? 1 : 0);
  auto child = ChildProcess::start("futex-echo", {f.path});
  if (!f.flags.wait_for(kReady, 1, std::chrono::seconds(60))) throw std::runtime_error("echo process did not start");
  Row row = ping_pong(name, bench, f.flags, iterations, spin);
  const auto status = child.wait(std::chrono::seconds(60));
  if (!status || *status != 0) throw std::runtime_error("echo process failed");
  return row;
}

Row threads(const std::string& name, const std::string& bench, std::uint32_t iterations, bool spin) {
  FlagsFile f(spin ? "tspin" : "tfutex");
  std::thread t([&] { echo(f.flags, iterations, spin); });
  Row row = ping_pong(name, bench, f.flags, iterations, spin);
  t.join();
  return row;
}

// The cost of a wake system call when nobody sleeps (what a writer would pay
// per message if it did not count sleepers).
Row wake_no_waiter(std::uint32_t iterations) {
  FlagsFile f("wake");
  Futex fx(f.flags.word(kPing), f.path + "#ping");
  Row row("wake, no waiter", "wake_no_waiter/memlink_futex");
  row.unit = "call";
  for (std::uint32_t i = 0; i < iterations; ++i) {
    const std::uint64_t t0 = platform::monotonic_ns();
    (void)fx.wake_one();
    row.samples_ns.push_back(platform::monotonic_ns() - t0);
  }
  return row;
}

// "Wine 8.0" under Wine, empty otherwise.
std::string wine_version() {
#if defined(_WIN32)
  using Fn = const char* (*)();
  if (HMODULE ntdll = GetModuleHandleA("ntdll.dll")) {
    if (auto fn = reinterpret_cast<Fn>(reinterpret_cast<void*>(GetProcAddress(ntdll, "wine_get_version"))))
      return std::string("Wine ") + fn();
  }
#endif
  return "";
}

std::string os_name() {
#if defined(_WIN32)
  const std::string wine = wine_version();
  return wine.empty() ? "Windows" : "Windows API under " + wine;
#elif defined(__APPLE__)
  return "macOS";
#elif defined(__linux__)
  return "Linux";
#else
  return "unknown";
#endif
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", static_cast<unsigned>(c));
      o += u;
      continue;
    }
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

// A JSON string.
std::string js(const std::string& s) { return "\"" + json_escape(s) + "\""; }

// A JSON number (finite).
std::string jn(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

// What the other bench programs (bench/harness.cpp add_context) and Google
// Benchmark put in "context", as well as this platform says it.
std::string os_release() {
#if defined(__linux__)
  std::ifstream osr("/etc/os-release");
  std::string line;
  while (std::getline(osr, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0 && line.size() >= 14) return line.substr(13, line.size() - 14);
#endif
  return os_name();
}

// "sysname release machine", as bench/harness.cpp writes it.
std::string kernel_name() {
#if defined(_WIN32)
  using HostFn = void (*)(const char**, const char**);
  if (HMODULE ntdll = GetModuleHandleA("ntdll.dll")) {
    if (auto fn = reinterpret_cast<HostFn>(reinterpret_cast<void*>(GetProcAddress(ntdll, "wine_get_host_version")))) {
      const char* sys = nullptr;
      const char* rel = nullptr;
      fn(&sys, &rel);
      return std::string(sys ? sys : "unknown") + " " + (rel ? rel : "unknown") + " (Wine host)";
    }
    using VersionFn = LONG(WINAPI*)(OSVERSIONINFOW*);
    if (auto fn = reinterpret_cast<VersionFn>(reinterpret_cast<void*>(GetProcAddress(ntdll, "RtlGetVersion")))) {
      OSVERSIONINFOW v{};
      v.dwOSVersionInfoSize = sizeof v;
      if (fn(&v) == 0)
        return "Windows " + std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." +
               std::to_string(v.dwBuildNumber);
    }
  }
  return "Windows unknown";
#else
  utsname u{};
  if (::uname(&u) != 0) return "unknown unknown";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
#endif
}

std::string host_name() {
#if defined(_WIN32)
  char b[256];
  DWORD n = sizeof b;
  return GetComputerNameA(b, &n) ? std::string(b, n) : "unknown";
#else
  char b[256] = {};
  return ::gethostname(b, sizeof b - 1) == 0 ? std::string(b) : "unknown";
#endif
}

// The CPU model and its MHz from /proc/cpuinfo; "unknown" and 0 elsewhere.
std::pair<std::string, double> cpu_info() {
  std::string model = "unknown";
  double mhz = 0;
#if defined(__linux__)
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon + 2 > line.size()) continue;
    if (model == "unknown" && line.rfind("model name", 0) == 0) model = line.substr(colon + 2);
    if (mhz == 0 && line.rfind("cpu MHz", 0) == 0) mhz = std::strtod(line.c_str() + colon + 1, nullptr);
  }
#endif
  return {model, mhz};
}

std::string utc_date() {
  const std::time_t t = std::time(nullptr);
  char b[40] = "unknown";
  if (const std::tm* tm = std::gmtime(&t)) std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S+00:00", tm);
  return b;
}

// The rows as Google Benchmark JSON (bench/report.py reads it).
bool write_json(const std::string& path, const std::vector<Row>& rows, const std::string& executable,
                std::uint32_t iterations, bool smoke) {
  const auto [model, mhz] = cpu_info();
  std::ofstream out(path);
  out << "{\n  \"context\": {\n"
      << "    \"date\": " << js(utc_date()) << ",\n"
      << "    \"host_name\": " << js(host_name()) << ",\n"
      << "    \"executable\": " << js(executable) << ",\n"
      << "    \"num_cpus\": " << std::thread::hardware_concurrency() << ",\n"
      << "    \"mhz_per_cpu\": " << static_cast<long long>(mhz) << ",\n"
#if defined(NDEBUG)
      << "    \"library_build_type\": \"release\",\n"
#else
      << "    \"library_build_type\": \"debug\",\n"
#endif
#if defined(__clang__)
      << "    \"compiler\": " << js("clang " __clang_version__) << ",\n"
#elif defined(__GNUC__)
      << "    \"compiler\": " << js("gcc " __VERSION__) << ",\n"
#endif
      << "    \"cpu_model\": " << js(model) << ",\n"
      << "    \"kernel\": " << js(kernel_name()) << ",\n"
      << "    \"os\": " << js(os_release()) << ",\n"
      << "    \"pinned_cpus\": \"none\",\n"  // it pins nothing
      << "    \"online_cpus\": " << js(std::to_string(std::thread::hardware_concurrency())) << ",\n"
      << "    \"futex_backend\": " << js(Futex::backend()) << ",\n"
      << "    \"iterations\": " << iterations << ",\n"
      << "    \"smoke\": " << (smoke ? "true" : "false") << ",\n"
      << "    \"under_wine\": " << (wine_version().empty() ? "false" : "true") << "\n"
      << "  },\n  \"benchmarks\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::vector<std::uint64_t> s = r.samples_ns;
    std::sort(s.begin(), s.end());
    double sum = 0;
    for (auto v : s) sum += static_cast<double>(v);
    const double n = static_cast<double>(s.size());
    const double mean = s.empty() ? 0 : sum / n;
    const double per_s = sum > 0 ? 1e9 * n / sum : 0;
    using memlink::shm::nearest_rank;
    out << "    {\"name\": " << js(r.benchmark) << ", \"run_name\": " << js(r.benchmark)
        << ", \"run_type\": \"iteration\", \"repetitions\": 1, \"repetition_index\": 0, \"threads\": 1"
        << ", \"iterations\": " << s.size() << ", \"real_time\": " << jn(mean)
        << ", \"cpu_time\": " << jn(mean)  // not measured: the wall time of the timing side
        << ", \"time_unit\": \"ns\", \"items_per_second\": " << jn(per_s) << ", \"p50_ns\": " << nearest_rank(s, 0.5)
        << ", \"p99_ns\": " << nearest_rank(s, 0.99) << ", \"p999_ns\": " << nearest_rank(s, 0.999)
        << ", \"max_ns\": " << (s.empty() ? 0 : s.back());
    if (r.unit == "round trip") out << ", \"rt_per_s\": " << jn(per_s);
    out << ", \"samples\": " << s.size() << ", \"label\": " << js(r.name) << "}"
        << (i + 1 < rows.size() ? ",\n" : "\n");
  }
  out << "  ]\n}\n";
  return static_cast<bool>(out);
}

int usage(FILE* to) {
  std::fprintf(to,
               "usage: bench_futex_portable [--smoke] [--iterations N] [--json FILE] [--help] [--version]\n"
               "Round trips between two processes and two threads through memlink's futex\n"
               "backend (%s here), against a shared-cache-line spin floor measured in\n"
               "the same run; and the cost of a wake with no waiter.\n"
               "  --smoke         a few hundred iterations: checks it runs, measures nothing\n"
               "  --iterations N  round trips per row (default 20000)\n"
               "  --json FILE     also write the rows as Google Benchmark JSON (scripts/compare-latency)\n",
               Futex::backend());
  return to == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (auto status = memlink::shm::test::run_child_role(argc, argv)) return *status;
  std::uint32_t iterations = 20000;
  std::string json_path;
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return usage(stdout);
    if (a == "--version" || a == "-V") {
      std::printf("bench_futex_portable %s (layout version %u, futex backend %s)\n", MEMLINK_SHM_VERSION,
                  static_cast<unsigned>(memlink::shm::LAYOUT_VERSION), Futex::backend());
      return 0;
    }
    if (a == "--smoke") {
      smoke = true;
    } else if (a == "--iterations" && i + 1 < argc) {
      iterations = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "bench_futex_portable: unknown argument '%s'\n", a.c_str());
      return usage(stderr);
    }
  }
  if (smoke) iterations = 300;
  if (iterations == 0) return usage(stderr);

  const std::string os = os_name();
  std::printf("bench_futex_portable: %s, futex backend %s, %u iterations per row%s\n", os.c_str(),
              Futex::backend(), iterations, smoke ? " (smoke run: the numbers mean nothing)" : "");
  if (!wine_version().empty())
    std::printf("NOTE: running under %s. These are Wine's numbers, not Windows': Wine carries\n"
                "      every wait and wake through its wineserver process. Measure on Windows\n"
                "      for Windows numbers.\n",
                wine_version().c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  try {
    const bool single_cpu = std::thread::hardware_concurrency() < 2;
    // The process rows carry bench_roundtrip's names for the same floors.
    if (!single_cpu)
      rows.push_back(processes("processes, spin on a cache line (floor)", "roundtrip/floor_cache_line/8/real_time",
                               iterations, true));
    rows.push_back(processes("processes, futex wait/wake", "roundtrip/floor_futex/8/real_time", iterations, false));
    if (!single_cpu)
      rows.push_back(threads("threads, spin on a cache line", "round_trip/spin_threads/real_time", iterations, true));
    rows.push_back(
        threads("threads, futex wait/wake", "round_trip/memlink_futex_threads/real_time", iterations, false));
    rows.push_back(wake_no_waiter(iterations));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_futex_portable: %s\n", e.what());
    return 1;
  }

  const std::uint64_t floor = rows.front().name.find("floor") != std::string::npos ? rows.front().percentile(0.5) : 0;
  std::printf("%-42s %12s %12s %12s %12s\n", "row", "p50 ns", "p99 ns", "max ns", "p50/floor");
  for (const Row& r : rows) {
    const std::uint64_t p50 = r.percentile(0.5);
    char ratio[32] = "-";
    if (floor > 0 && r.unit == "round trip") std::snprintf(ratio, sizeof ratio, "%.1fx", double(p50) / double(floor));
    std::printf("%-42s %12llu %12llu %12llu %12s\n", r.name.c_str(), (unsigned long long)p50,
                (unsigned long long)r.percentile(0.99), (unsigned long long)r.max(), ratio);
  }
  if (!json_path.empty() && !write_json(json_path, rows, argv[0], iterations, smoke)) {
    std::fprintf(stderr, "bench_futex_portable: cannot write %s\n", json_path.c_str());
    return 1;
  }
  return 0;
}
