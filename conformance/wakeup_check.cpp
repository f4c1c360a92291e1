// Cross-process wait/wake (reference library): a daemon in a forked process
// answers a client, both sleeping on futexes (Block strategy); a lost
// wake-up shows as a wait that times out. Then the daemon is killed with
// SIGKILL: the client's writes still land (T-KILLED) and its wait reports
// Disconnected instead of sleeping forever (T-WAIT).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "memlink/shm/transport.hpp"
#include "suite.hpp"

namespace memlink::conformance {
namespace {

using namespace std::chrono_literals;

Failure failure(const std::string& clause, const std::string& what, const Params& p) {
  return Failure{clause, "[" + clause + "] " + what, {},
                 "scripts/conformance --only wakeup --seed " + std::to_string(p.seed)};
}

[[noreturn]] void serve(const std::string& path, int ready_fd) {
  shm::DaemonOptions o;
  o.endpoint.wait_strategy = shm::WaitStrategy::Block;
  o.remove_on_shutdown = false;
  auto d = shm::Daemon::create(path, shm::DEFAULT_SEGMENT_SIZE, 1, o);
  const char ok = d ? 1 : 0;
  (void)::write(ready_fd, &ok, 1);
  if (!d) ::_exit(2);
  std::vector<std::byte> buf(d->geometry().slot_size);
  for (;;) {
    (void)d->wait(1s);
    while (auto m = d->read(buf)) (void)d->write_blocking(m->priority, std::span(buf.data(), m->length), 5s);
  }
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
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Block;
  auto client = shm::Client::connect(path, 1, o);
  if (!client) return finish(failure("V-CONNECT", "connect: " + client.error().message(), params));

  std::vector<std::byte> buf(client->geometry().slot_size);
  for (int i = 0; i < rounds; ++i) {
    const auto p = static_cast<shm::Priority>(i % 3);
    std::uint64_t id = 0xC0FFEE00000000ULL + static_cast<std::uint64_t>(i);
    if (auto w = client->write(p, std::span(reinterpret_cast<const std::byte*>(&id), sizeof id)); !w)
      return finish(failure("T-ENDPOINTS", "write " + std::to_string(i) + ": " + w.error().message(), params));
    for (;;) {
      auto m = client->read(buf);
      if (m) {
        std::uint64_t got = 0;
        std::memcpy(&got, buf.data(), sizeof got);
        if (got != id) return finish(failure("R-FIFO", "answer " + std::to_string(i) + " carries the wrong id", params));
        break;
      }
      record_clause("F-WAKE");
      if (auto s = client->wait(5s); !s)
        return finish(failure("F-WAKE", "round " + std::to_string(i) + ": the answer's wake-up was lost (" +
                                            s.error().message() + ")", params));
    }
    ++result.cases;
  }
  record_clause("F-WORDS");
  record_clause("T-WAIT");
  if (auto s = client->wait(20ms); s.code() != shm::ErrorCode::Timeout)
    return finish(failure("T-WAIT", "wait with nothing to read returned " +
                                        std::string(s.ok() ? "Ok" : shm::to_string(s.code())) + ", not Timeout", params));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  record_clause("T-KILLED");
  if (auto w = client->write(shm::Priority::Low, std::span(buf.data(), 8)); !w)
    return finish(failure("T-KILLED", "write after the daemon died: " + w.error().message(), params));
  if (auto s = client->wait(10s); s.code() != shm::ErrorCode::Disconnected)
    return finish(failure("T-WAIT", "wait after the daemon was killed returned " +
                                        std::string(s.ok() ? "Ok" : shm::to_string(s.code())) + ", not Disconnected", params));
  result.notes = std::to_string(rounds) + " cross-process round trips with futex sleeps, then kill -9 of the daemon";
  (void)shm::RecoveryManager(path).cleanup_orphaned_shm();
  return result;
}

}  // namespace memlink::conformance
