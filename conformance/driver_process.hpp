// One driver process (DRIVER.md): started as `/bin/sh -c 'exec CMD'`, spoken
// to in JSON lines over its stdin and stdout, timed on the suite's clock.
//
// Every call has a timeout (D-TIME). A driver that exits, hangs past it, or
// answers with anything but its response throws DriverFailure, whose message
// names the driver command, the process's role and pid, the request, the
// last line it printed and the tail of its stderr; the process is then
// killed. Nothing here can hang the suite.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "memlink/shm/result.hpp"

namespace memlink::conformance::driver {

struct DriverFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the driver said in its hello (D-HELLO).
struct Hello {
  std::string name, version;
  std::set<std::string> capabilities;
  std::vector<std::string> crash_points;
  bool has(const std::string& capability) const { return capabilities.count(capability) > 0; }
};

// A response and when the suite sent the request and read the answer.
struct Reply {
  nlohmann::json body;
  std::uint64_t invoke_ns = 0, response_ns = 0;
  bool ok() const { return body.value("ok", false); }
  // The D-ERRORS error of a failed reply (InvalidArgument if it named none).
  shm::Error error() const;
};

class DriverProcess {
 public:
  // Starts CMD in `role` (for messages: "daemon", "client 2", ...) and says
  // hello. Throws DriverFailure if it cannot start or its hello is wrong.
  struct StartOptions {
    // false: never waitpid() it; whoever starts it reaps it (the chaos
    // runner reaps every child itself), and ~DriverProcess only closes pipes.
    bool reaps = true;
    std::string stderr_path;  // where its stderr goes ("": a temporary file, removed with it)
  };
  static std::unique_ptr<DriverProcess> start(const std::string& command, const std::string& role,
                                              std::chrono::milliseconds timeout, StartOptions options);
  static std::unique_ptr<DriverProcess> start(const std::string& command, const std::string& role,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return start(command, role, timeout, StartOptions{});
  }
  ~DriverProcess();  // closes stdin; kills it if it does not exit within 2 s
  DriverProcess(const DriverProcess&) = delete;
  DriverProcess& operator=(const DriverProcess&) = delete;

  // Sends `request` (its "id" is set here) and waits for the response.
  Reply call(nlohmann::json request, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The same in two halves, so a caller can tell a crash (no response, the
  // process gone) from a failure: send() then receive().
  void send(nlohmann::json request);
  Reply receive(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the process to end (a crash point, a kill);
  // true if it did. exit_status() then says how.
  bool wait_exit(std::chrono::milliseconds timeout);

  void kill9();    // SIGKILL and reap
  void stop();     // SIGSTOP
  void resume();   // SIGCONT
  void terminate();  // SIGTERM (workload mode: stop cleanly)
  void close_stdin();
  // Stops all signalling and reaping of the process here (kill9, stop, ...
  // do nothing after it): its owner (StartOptions::reaps = false) does that.
  void forget();

  pid_t pid() const { return pid_; }
  const Hello& hello() const { return hello_; }
  const std::string& role() const { return role_; }
  bool exited() const { return exited_; }
  int exit_status() const { return status_; }  // waitpid's status
  std::string describe_exit() const;           // "exited 3", "killed by signal 9"
  // The tail of what the process wrote to stderr (its log).
  std::string stderr_tail(std::size_t max_bytes = 600) const;

 private:
  DriverProcess() = default;
  [[noreturn]] void fail(const std::string& what, const nlohmann::json& request);
  bool reap(bool block);

  std::string command_, role_, stderr_path_;
  bool reaps_ = true, remove_stderr_ = true;
  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1;
  std::string buffer_, last_line_;
  std::int64_t next_id_ = 1;
  nlohmann::json pending_;  // the request send() sent, for receive()'s messages
  std::uint64_t invoke_ns_ = 0;  // when send() began
  bool exited_ = false;
  int status_ = 0;
  Hello hello_;
};

}  // namespace memlink::conformance::driver
