// One driver process (DRIVER.md): spoken to in JSON lines over two pipes,
// timed on the suite's clock. It is hosted one of three ways, and every
// check talks to all three the same way:
//   - a command, started as `/bin/sh -c 'exec CMD'` (a third party's driver,
//     memlink-shm-driver): the only way a transport in another language is
//     checked;
//   - a thread of this process serving the reference driver over the pipes
//     (the in-process launcher, --adapter reference): every endpoint's
//     accesses are in one process, where ThreadSanitizer sees them, and a
//     case costs no process start. It cannot be killed or stopped;
//   - a forked child of this process serving the reference driver: for the
//     scenarios that kill or stop a process (recovery, crash points).
//
// Every call has a timeout (D-TIME). A driver that exits, hangs past it, or
// answers with anything but its response throws DriverFailure, whose message
// names the driver command, the process's role and pid, the request, the
// last line it printed and the tail of its stderr; the process is then
// killed. Nothing here can hang the suite.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "driver_answer.hpp"
#include "memlink/conformance/limits.hpp"
#include "memlink/shm/result.hpp"
#include "memlink/spec/clause_ids.hpp"
#include "stderr_tail.hpp"

namespace memlink::conformance::driver {

// A driver that broke the protocol: crashed, hung, printed garbage. Its
// message names the rule of DRIVER.md it broke (D-TIME, D-FRAME, ...).
struct DriverFailure : std::runtime_error {
  explicit DriverFailure(const std::string& what, spec::DriverRule broke = spec::DriverRule::D_PROC,
                         std::string untagged = {})
      : std::runtime_error(what), rule(broke), untagged_(std::move(untagged)) {}
  spec::DriverRule rule;
  // The message without its "[D-...]" tag, for a report that prints the
  // rule beside it (what() carries the tag, for one that does not).
  const char* text() const noexcept { return untagged_.empty() ? what() : untagged_.c_str(); }

 private:
  std::string untagged_;
};

// What the driver said in its hello (D-HELLO).
struct Hello {
  int protocol = 0;  // the version it answered (D-VERSION)
  std::string name, version;
  std::set<std::string> capabilities;
  std::vector<std::string> crash_points;
  Limits limits;
  bool has(const std::string& capability) const { return capabilities.count(capability) > 0; }
};
// What a check says when an answer lacks a field it needs or has one of the
// wrong type: the parser's words and the last answer this thread received.
std::string type_error_text(const nlohmann::json::exception& e);

// Reads a hello answer; throws DriverFailure naming what is malformed.
Hello parse_hello(const nlohmann::json& answer);

// A response and when the suite sent the request and read the answer.
struct Reply {
  nlohmann::json body;
  std::uint64_t invoke_ns = 0, response_ns = 0;
  bool ok() const { return body.value("ok", false); }
  // The D-ERRORS error of a failed reply (InvalidArgument if it named none).
  shm::Error error() const;
};

// Whether start_forked() can work in this build: not under ThreadSanitizer,
// whose runtime forbids threads in the child of a threaded parent.
bool forking_allowed();

// What a process hosted in this process runs: serve requests from `in_fd`,
// answer on `out_fd`, until end of file (the reference driver's serve_lines).
using Server = std::function<int(int in_fd, int out_fd)>;

class DriverProcess {
 public:
  // D-FRAME: the longest line a driver may print (an observe of the largest
  // segment, 2 million slots of one byte, is about 4 MiB); a longer one
  // fails instead of filling memory, in each of the drivers a check runs at
  // once.
  static constexpr std::size_t kMaxLineBytes = std::size_t{8} << 20;

  struct StartOptions {
    // false: never waitpid() it; whoever starts it reaps it (the chaos
    // runner reaps every child itself), and ~DriverProcess only closes pipes.
    bool reaps = true;
    // Where its stderr goes: a file (opened without following a link), or
    // "": a pipe whose last 64 KiB the suite keeps in memory.
    std::string stderr_path;
  };
  // Starts CMD in `role` (for messages: "daemon", "client 2", ...) and says
  // hello. Throws DriverFailure if it cannot start or its hello is wrong.
  static std::unique_ptr<DriverProcess> start(const std::string& command, const std::string& role,
                                              std::chrono::milliseconds timeout, StartOptions options);
  static std::unique_ptr<DriverProcess> start(const std::string& command, const std::string& role,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return start(command, role, timeout, StartOptions{});
  }
  // `server` on a thread of this process (`name` stands for the command in
  // messages). It cannot be killed, stopped or armed (killable() is false).
  static std::unique_ptr<DriverProcess> start_thread(Server server, const std::string& name, const std::string& role,
                                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // `server` in a forked child of this process (not under ThreadSanitizer,
  // whose runtime forbids threads in the child of a threaded parent). With
  // `exec_path`, the child instead executes that program (no arguments; it
  // serves the same protocol on stdin and stdout): a child of a threaded
  // parent inherits every lock another thread held at the fork (the
  // allocator's, a stream's) and may hang at its first allocation, while a
  // fresh program inherits none.
  static std::unique_ptr<DriverProcess> start_forked(Server server, const std::string& name, const std::string& role,
                                                     std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                                     const std::string& exec_path = {});
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
  // Waits up to `timeout` for the process to stop itself (D-ARM "stop").
  bool wait_stopped(std::chrono::milliseconds timeout);

  // Whether it is a process of its own (kill9, stop, resume, arm): not a thread.
  bool killable() const { return !threaded_; }
  void kill9();      // SIGKILL and reap
  void stop();       // SIGSTOP
  void resume();     // SIGCONT
  void terminate();  // SIGTERM (workload mode: stop cleanly)
  void close_stdin();
  // Stops all signalling and reaping of the process here (kill9, stop, ...
  // do nothing after it): its owner (StartOptions::reaps = false) does that.
  void forget();

  pid_t pid() const { return pid_; }
  const Hello& hello() const { return hello_; }
  const std::string& role() const { return role_; }
  void set_role(std::string role) { role_ = std::move(role); }
  bool exited() const { return exited_; }
  int exit_status() const { return status_; }  // waitpid's status
  std::string describe_exit() const;           // "exited 3", "killed by signal 9"
  // The tail of what the process wrote to stderr (its log).
  std::string stderr_tail(std::size_t max_bytes = 600) const;

 private:
  DriverProcess() = default;
  static std::unique_ptr<DriverProcess> greet(std::unique_ptr<DriverProcess> p, std::chrono::milliseconds timeout);
  [[noreturn]] void fail(spec::DriverRule broke, const std::string& what, const nlohmann::json& request);
  std::unique_ptr<StderrTail> make_stderr_tail() const;
  bool reap(bool block);
  void require_killable(const char* what) const;

  std::string command_, role_, stderr_path_;  // stderr_path_: "" unless StartOptions named a file
  std::unique_ptr<StderrTail> stderr_;        // otherwise its stderr, kept here
  bool reaps_ = true;
  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1;
  std::string buffer_, last_line_;
  std::size_t scanned_ = 0;  // bytes of buffer_ known to hold no newline (receive() scans each byte once)
  std::int64_t next_id_ = 1;
  nlohmann::json pending_;       // the request send() sent, for receive()'s messages
  std::uint64_t invoke_ns_ = 0;  // when send() began
  bool exited_ = false;
  int status_ = 0;
  Hello hello_;
  // A thread-hosted process: its server thread, and whether it has returned.
  bool threaded_ = false;
  std::shared_ptr<std::atomic<bool>> thread_done_;
  std::thread thread_;
};

}  // namespace memlink::conformance::driver
