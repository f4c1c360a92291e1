// What the cross-process recovery checks share (recovery_check.cpp,
// point_walk.cpp): the verdict being built, the options of the processes,
// forked processes that report over a pipe, and draining a daemon.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "memlink/shm/transport.hpp"
#include "suite.hpp"

namespace memlink::conformance::recovery {

using namespace std::chrono_literals;
inline constexpr std::size_t kSize = 64 * 1024;

// The verdict so far: the first failed check, naming its clause.
struct Scenario {
  const Params& params;
  std::optional<Failure> failure;
  std::string context;  // prefixed to a failure ("pause at write.after-claim: ...")
  bool check(bool ok, const std::string& clause, const std::string& what) {
    record_clause(clause);
    if (!ok && !failure)
      failure = Failure{clause, "[" + clause + "] " + (context.empty() ? "" : context + ": ") + what, {},
                        "scripts/conformance --only recovery --seed " + std::to_string(params.seed)};
    return ok;
  }
};

inline shm::DaemonOptions options() {
  shm::DaemonOptions o;
  o.slot_size = 64;
  o.remove_on_shutdown = false;
  o.heartbeat_interval = 20ms;
  o.heartbeat_timeout = 200ms;
  o.endpoint.wait_strategy = shm::WaitStrategy::Block;
  o.endpoint.recovery.stale_after = 0ms;
  o.endpoint.recovery.claim_timeout = 50ms;
  return o;
}

inline shm::EndpointOptions client_options() {
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Block;
  o.daemon_timeout = 200ms;
  return o;
}

inline std::string text(const std::vector<std::byte>& b, std::size_t n) {
  return {reinterpret_cast<const char*>(b.data()), n};
}

// A forked process running `body(fd)`, whose result is its exit status;
// it writes its reports to `fd`, the parent reads them from `fd`.
struct Proc {
  pid_t pid = -1;
  int fd = -1;
  int status = 0;
  bool reaped = false;
};

inline Proc spawn(const std::function<int(int fd)>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(60);  // never outlive the check by much
    // A crash point announces itself on stderr; the check says what matters.
    if (const int null = ::open("/dev/null", O_WRONLY); null >= 0) ::dup2(null, 2);
    ::_exit(body(fds[1]));
  }
  ::close(fds[1]);
  return Proc{pid, fds[0]};
}

inline char next_byte(const Proc& p) {
  char c = 0;
  return ::read(p.fd, &c, 1) == 1 ? c : '\0';
}

// Everything the process still writes, until it exits (closes the pipe).
inline std::string rest(Proc& p) {
  std::string s;
  char c;
  while (::read(p.fd, &c, 1) == 1) s += c;
  ::close(p.fd);
  p.fd = -1;
  return s;
}

inline void reap(Proc& p) {
  if (p.pid > 0 && !p.reaped) {
    ::waitpid(p.pid, &p.status, 0);
    p.reaped = true;
  }
}

inline void kill_and_reap(Proc& p) {
  if (p.pid > 0 && !p.reaped) {
    ::kill(p.pid, SIGKILL);
    ::kill(p.pid, SIGCONT);
  }
  reap(p);
  if (p.fd >= 0) {
    ::close(p.fd);
    p.fd = -1;
  }
}

// True once the process is stopped (SIGSTOP, a pause point); false if it
// exited or did not stop within `limit`.
inline bool wait_stopped(Proc& p, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    int st = 0;
    const pid_t r = ::waitpid(p.pid, &st, WUNTRACED | WNOHANG);
    if (r == p.pid) {
      if (WIFSTOPPED(st)) return true;
      p.status = st;
      p.reaped = true;
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

inline bool died_by_sigkill(const Proc& p) { return p.reaped && WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGKILL; }
inline int exit_code(const Proc& p) { return p.reaped && WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1; }

// Reads until `want` messages came or `patience` passed (a deadline, not a
// count of tries: a read can fail fast many times in a row while a fenced
// predecessor still holds the tail, K-FENCE).
inline std::vector<std::string> drain(shm::Endpoint& ep, std::size_t want, std::chrono::milliseconds patience = 20s) {
  std::vector<std::string> got;
  std::vector<std::byte> buf(64);
  const auto give_up = std::chrono::steady_clock::now() + patience;
  while (got.size() < want && std::chrono::steady_clock::now() < give_up) {
    if (auto m = ep.read(buf)) {
      got.push_back(text(buf, m->length));
      continue;
    }
    (void)ep.wait(10ms);
  }
  return got;
}

// Starts a daemon on `path`, retrying while the previous one is still
// alive by its heartbeat (AlreadyExists) until `patience` passed.
inline shm::Result<shm::Daemon> take_over(const std::string& path, std::chrono::milliseconds patience = 10s) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    auto d = shm::Daemon::create(path, kSize, 1, options());
    if (d || d.code() != shm::ErrorCode::AlreadyExists || std::chrono::steady_clock::now() >= give_up) return d;
    std::this_thread::sleep_for(20ms);
  }
}

std::string fresh_path(const char* tag);

// The scenarios of point_walk.cpp.
void walk_points(Scenario& s, Depth depth);
void busy_daemon(Scenario& s);

}  // namespace memlink::conformance::recovery
