// `memlink-shm daemon` and `memlink-shm client`: an echo service across
// processes and the client that checks it and measures round trips.
#include <csignal>

#if defined(_WIN32)
#include <io.h>
#define MEMLINK_ISATTY(fd) (::_isatty(fd) != 0)
#else
#include <unistd.h>
#define MEMLINK_ISATTY(fd) (::isatty(fd) != 0)
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "log_limiter.hpp"
#include "memlink/shm/mix.hpp"
#include "memlink/shm/percentile.hpp"
#include "memlink/shm/platform.hpp"

namespace memlink::shm::tool {
namespace {

using namespace std::chrono_literals;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

void install_stop_handlers() {
#if defined(_WIN32)
  // Ctrl-C and Ctrl-Break reach the C runtime as SIGINT / SIGBREAK.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGBREAK, on_signal);
#else
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a futex wait returns EINTR and we notice
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
#endif
}

void print_error(const std::string& what, const Error& e) {
  std::fprintf(stderr, "memlink-shm: %s: %s\n", what.c_str(), e.message().c_str());
}

// Request i's payload: this run's nonce (8 bytes) and i (8 bytes), little
// endian, as far as the payload has room, then bytes derived from i. The
// nonce tells this run's answers from answers left in d2c for a client that
// was killed before it read them; i pairs each answer with its request.

void fill_request(std::vector<std::byte>& buf, std::uint64_t nonce, std::uint64_t i) {
  for (std::size_t k = 0; k < buf.size(); ++k)
    buf[k] = k < 8    ? static_cast<std::byte>((nonce >> (8 * k)) & 0xFF)
             : k < 16 ? static_cast<std::byte>((i >> (8 * (k - 8))) & 0xFF)
                      : static_cast<std::byte>((i * 131 + k * 7 + (i >> 8)) & 0xFF);
}

// True if `answer` carries this run's nonce (all of it that fits).
bool is_ours(std::span<const std::byte> answer, std::size_t request_size, std::uint64_t nonce) {
  if (answer.size() != request_size) return false;
  for (std::size_t k = 0; k < std::min<std::size_t>(8, answer.size()); ++k)
    if (answer[k] != static_cast<std::byte>((nonce >> (8 * k)) & 0xFF)) return false;
  return true;
}

// A nonce no earlier run used: pid, time and address-space randomness.
std::uint64_t run_nonce() {
  std::uint64_t x = (static_cast<std::uint64_t>(platform::current_pid()) << 32) ^ platform::monotonic_ns() ^
                    reinterpret_cast<std::uintptr_t>(&x);
  return mix64(x);  // spread the bits
}

// p in percent; nearest rank (memlink/shm/percentile.hpp), 0 when empty.
double percentile(const std::vector<double>& sorted, double p) { return memlink::shm::nearest_rank(sorted, p / 100.0); }

}  // namespace

int run_cleanup(const std::string& path, bool allow_foreign_owner) {
  RecoveryManager rm(path);
  RecoveryManager::CleanupReport removed;
  auto s = rm.cleanup_orphaned_shm(&removed, allow_foreign_owner);
  if (s.ok()) {
    std::printf("memlink-shm cleanup: removed %s of '%s'\n",
                removed.segment ? "the segment and its side files" : "the PID file (there was no segment)",
                path.c_str());
    return kExitOk;
  }
  if (s.code() == ErrorCode::NotFound) {
    std::printf("memlink-shm cleanup: nothing to remove at '%s'\n", path.c_str());
    return kExitOk;
  }
  print_error("cleanup '" + path + "'", s.error());
  return kExitError;
}

int run_daemon(const DaemonArgs& args) {
  if (args.replace) {
    RecoveryManager rm(args.path);
    if (auto s = rm.cleanup_orphaned_shm(nullptr, args.allow_foreign_owner); !s && s.code() != ErrorCode::NotFound) {
      print_error("--replace '" + args.path + "'", s.error());
      return kExitError;
    }
  }
  DaemonOptions opts;
  opts.endpoint.wait_strategy = args.wait;
  opts.slot_size = args.slot_size;
  opts.take_over = args.take_over;
  opts.heartbeat_interval = std::chrono::milliseconds(args.heartbeat_ms);
  opts.heartbeat_timeout = std::chrono::milliseconds(args.heartbeat_timeout_ms);
  opts.endpoint.allow_foreign_owner = args.allow_foreign_owner;
  // Before the segment exists: a SIGINT or SIGTERM in the moment a client
  // can already connect must still end in a clean shutdown (files removed),
  // not kill the daemon outright.
  install_stop_handlers();
  auto daemon = Daemon::create(args.path, args.size, args.version, opts);
  if (!daemon) {
    print_error("cannot serve '" + args.path + "'", daemon.error());
    const bool no_magic = daemon.code() == ErrorCode::CorruptSegment &&
                          daemon.error().detail.find("control.magic") != std::string::npos;
    if (no_magic)  // cleanup and --replace remove memlink segments only (SPEC K-ORPHAN)
      std::fprintf(stderr, "hint: '%s' is not a memlink segment, and memlink-shm will not remove it; if it is "
                           "yours and you do not need it, remove it yourself\n", args.path.c_str());
    else if (daemon.code() == ErrorCode::AlreadyExists || daemon.code() == ErrorCode::CorruptSegment)
      std::fprintf(stderr, "hint: inspect it with 'memlink-shm inspect %s'; remove what a dead daemon left with "
                           "'memlink-shm cleanup %s' or pass --replace\n", args.path.c_str(), args.path.c_str());
    return kExitError;
  }
  if (!args.quiet && daemon->start_info().kind != DaemonStart::Fresh) {
    const DaemonStartInfo& st = daemon->start_info();
    std::printf("memlink-shm daemon: took over from %s daemon pid %u: epoch %llu, recovered %llu slots "
                "(%llu unfinished writes reclaimed, %llu reads requeued, %llu finished reads released)\n",
                std::string(to_string(st.kind)).c_str(), st.previous_pid, static_cast<unsigned long long>(st.epoch),
                static_cast<unsigned long long>(st.recovered.total()),
                static_cast<unsigned long long>(st.recovered.reclaimed_writing + st.recovered.reclaimed_claimed),
                static_cast<unsigned long long>(st.recovered.requeued_reading),
                static_cast<unsigned long long>(st.recovered.released_done));
  }
  const Geometry& g = daemon->geometry();
  if (!args.quiet) {
    std::printf("memlink-shm daemon: serving %s (pid %u, protocol %u, %zu bytes, slots per priority %u/%u/%u, wait %s)\n",
                args.path.c_str(), platform::current_pid(), args.version, g.segment_size,
                g.distribution.critical, g.distribution.high, g.distribution.low,
                std::string(to_string(args.wait)).c_str());
    std::fflush(stdout);
  }
  std::vector<std::byte> buf(g.slot_size);
  std::uint64_t served = 0, corrupt = 0, dropped = 0;
  int status = kExitOk;
  // Every error that can repeat on each turn goes through the limiter, and a
  // turn that ended in an error backs off (1 ms doubling to 200 ms): a slot
  // held by a live process, or a peer that keeps corrupting, must cost
  // neither a CPU nor the disk (issue 14: 400,000 lines in 5 s).
  LogLimiter log(stderr);
  std::chrono::milliseconds backoff{0};
  auto stop_with = [&](const std::string& what, const Error& e) {
    log.report("memlink-shm: " + what + ": " + e.message(), platform::monotonic_ns());
    status = kExitError;
    g_stop = 1;
  };
  while (!g_stop) {
    daemon->heartbeat();
    auto s = daemon->wait(200ms);
    if (daemon->fenced()) {
      stop_with("stopping", make_error(ErrorCode::Disconnected, "fenced: another daemon took over '" + args.path + "'"));
      break;
    }
    if (!s && s.code() != ErrorCode::Timeout && s.code() != ErrorCode::Interrupted) {
      stop_with("wait", s.error());
      break;
    }
    bool turn_failed = false;
    // A turn drops at most this many corrupt messages before it backs off:
    // a peer that corrupts as fast as we drop must not own a CPU (SPEC 9b).
    int corrupt_this_turn = 0;
    constexpr int kCorruptPerTurn = 1024;
    while (!g_stop) {
      auto m = daemon->read(buf);
      if (!m) {
        if (m.code() == ErrorCode::Empty) break;
        turn_failed = true;
        if (!daemon->is_connected()) {
          stop_with("read", m.error());  // the segment is lost, or we were fenced: nothing more to serve
          break;
        }
        if (m.code() == ErrorCode::CorruptSegment) {
          ++corrupt;
          log.report("memlink-shm: dropped a corrupt message: " + m.error().message(), platform::monotonic_ns());
          if (!daemon->inbound().positions_consistent()) stop_with("read", m.error());
          if (++corrupt_this_turn >= kCorruptPerTurn) break;
          continue;
        }
        log.report("memlink-shm: read: " + m.error().message(), platform::monotonic_ns());
        break;
      }
      auto r = daemon->write_blocking(m->priority, std::span<const std::byte>(buf.data(), m->length), 1s);
      if (!r) {
        ++dropped;
        turn_failed = true;
        if (!daemon->is_connected()) {
          stop_with("answer to sequence " + std::to_string(m->sequence) + " not sent", r.error());
          break;
        }
        log.report("memlink-shm: an answer was not sent: " + r.error().message(), platform::monotonic_ns());
      } else {
        ++served;
      }
    }
    backoff = turn_failed ? std::min<std::chrono::milliseconds>(200ms, std::max<std::chrono::milliseconds>(1ms, backoff * 2)) : 0ms;
    if (backoff.count() > 0 && !g_stop) std::this_thread::sleep_for(backoff);
  }
  log.flush_repeats();
  daemon->shutdown();
  if (!args.quiet)
    std::printf("memlink-shm daemon: stopped; answered %llu, dropped %llu answers, %llu corrupt messages\n",
                static_cast<unsigned long long>(served), static_cast<unsigned long long>(dropped),
                static_cast<unsigned long long>(corrupt));
  return status;
}

int run_client(const ClientArgs& args) {
  EndpointOptions opts;
  opts.wait_strategy = args.wait;
  opts.allow_foreign_owner = args.allow_foreign_owner;
  auto client = Client::connect(args.path, args.version, opts);
  if (!client) {
    print_error("cannot connect to '" + args.path + "'", client.error());
    return kExitError;
  }
  const auto timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(args.timeout_s * 1e9));
  std::vector<std::byte> request(args.payload), answer(client->geometry().slot_size);
  std::vector<double> rtt_us;
  rtt_us.reserve(args.count);
  std::uint64_t matched = 0, mismatched = 0, leftovers = 0;
  std::string failure;
  const std::uint64_t nonce = run_nonce();
  // Answers to requests of a client that died before reading them: drain
  // what is there now; any that arrive later are told apart by the nonce.
  // (Taking the reader token here also takes it from a dead holder.)
  for (;;) {
    auto m = client->read(answer);
    if (!m) break;
    ++leftovers;
  }
  const bool progress = MEMLINK_ISATTY(2);
  std::uint64_t last_progress = platform::monotonic_ns();
  for (std::uint64_t i = 0; i < args.count && failure.empty(); ++i) {
    const Priority p = kAllPriorities[i % kPriorityCount];
    fill_request(request, nonce, i);
    const std::uint64_t t0 = platform::monotonic_ns();
    auto w = client->write_blocking(p, request, timeout);
    if (!w) {
      failure = "request " + std::to_string(i) + ": " + w.error().message();
      break;
    }
    for (;;) {
      auto m = client->read(answer);
      if (m) {
        const std::span<const std::byte> got(answer.data(), m->length);
        // Not ours (with a payload of 8 bytes or more the nonce decides;
        // below that, answers can only be paired by order): left over.
        if (request.size() >= 8 && !is_ours(got, request.size(), nonce)) {
          ++leftovers;
          continue;
        }
        const bool same = m->priority == p && m->length == request.size() &&
                          std::equal(request.begin(), request.end(), answer.begin());
        same ? ++matched : ++mismatched;
        break;
      }
      if (m.code() != ErrorCode::Empty) {
        failure = "answer " + std::to_string(i) + ": " + m.error().message();
        break;
      }
      if (auto s = client->wait(timeout); !s) {
        failure = "answer " + std::to_string(i) + ": " + s.error().message();
        break;
      }
    }
    const std::uint64_t t1 = platform::monotonic_ns();
    rtt_us.push_back(static_cast<double>(t1 - t0) / 1000.0);
    if (progress && t1 - last_progress > 1000000000ULL) {
      std::fprintf(stderr, "\r%llu/%llu requests", static_cast<unsigned long long>(i + 1),
                   static_cast<unsigned long long>(args.count));
      last_progress = t1;
    }
  }
  if (progress) std::fprintf(stderr, "\r");
  std::sort(rtt_us.begin(), rtt_us.end());
  const double p50 = percentile(rtt_us, 50), p99 = percentile(rtt_us, 99),
               max = rtt_us.empty() ? 0 : rtt_us.back();
  const bool ok = failure.empty() && mismatched == 0 && matched == args.count;
  std::printf("memlink-shm client: %llu requests, %llu answers matched, %llu mismatched; "
              "round trip p50 %.1f us, p99 %.1f us, max %.1f us (payload %zu B, wait %s)\n",
              static_cast<unsigned long long>(args.count), static_cast<unsigned long long>(matched),
              static_cast<unsigned long long>(mismatched), p50, p99, max, args.payload,
              std::string(to_string(args.wait)).c_str());
  if (leftovers > 0)
    std::printf("memlink-shm client: discarded %llu answers addressed to an earlier client (one that died before "
                "reading them)\n", static_cast<unsigned long long>(leftovers));
  if (!failure.empty()) std::fprintf(stderr, "memlink-shm client: FAILED: %s\n", failure.c_str());
  if (!args.json_path.empty()) {
    nlohmann::json j{{"ok", ok},
                     {"requests", args.count},
                     {"matched", matched},
                     {"mismatched", mismatched},
                     {"leftovers_discarded", leftovers},
                     {"payload_bytes", args.payload},
                     {"wait_strategy", std::string(to_string(args.wait))},
                     {"rtt_us", {{"p50", p50}, {"p99", p99}, {"max", max}}}};
    if (!failure.empty()) j["error"] = failure;
    if (args.json_path == "-") {
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::ofstream out(args.json_path);
      out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      out.close();
      if (!out) {  // an unwritable path used to exit 0 silently
        std::fprintf(stderr, "memlink-shm client: cannot write the JSON report to '%s': %s\n", args.json_path.c_str(),
                     std::strerror(errno));
        return kExitError;
      }
    }
  }
  if (!failure.empty()) return kExitError;
  return ok ? kExitOk : kExitCheckFailed;
}

}  // namespace memlink::shm::tool
