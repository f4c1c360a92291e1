#include "driver_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "driver_json.hpp"
#include "memlink/shm/platform.hpp"

extern char** environ;

namespace memlink::conformance::driver {
namespace {

using shm::platform::monotonic_ns;

std::string clip(std::string s, std::size_t n = 300) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

// The suite must not die of SIGPIPE when a driver has exited.
void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

}  // namespace

shm::Error Reply::error() const {
  const std::string name = body.value("error", std::string());
  const auto code = error_code_from_name(name);
  std::string detail = body.value("detail", std::string());
  if (!code) return shm::make_error(shm::ErrorCode::InvalidArgument, "the driver answered error '" + name + "': " + detail);
  return shm::make_error(*code, detail);
}

std::unique_ptr<DriverProcess> DriverProcess::start(const std::string& command, const std::string& role,
                                                    std::chrono::milliseconds timeout, StartOptions options) {
  ignore_sigpipe();
  std::unique_ptr<DriverProcess> p(new DriverProcess());
  p->command_ = command;
  p->role_ = role;
  p->reaps_ = options.reaps;
  static std::atomic<int> counter{0};
  p->remove_stderr_ = options.stderr_path.empty();
  p->stderr_path_ = options.stderr_path.empty() ? "/tmp/memlink-driver-" + std::to_string(::getpid()) + "-" +
                                                      std::to_string(counter++) + ".stderr"
                                                : options.stderr_path;
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
    throw DriverFailure("driver '" + command + "': cannot make pipes: " + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, p->stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const std::string exec_line = "exec " + command;
  const char* argv[] = {"/bin/sh", "-c", exec_line.c_str(), nullptr};
  const int rc = ::posix_spawn(&p->pid_, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  p->in_fd_ = in[1];
  p->out_fd_ = out[0];
  if (rc != 0) {
    ::close(p->in_fd_);
    ::close(p->out_fd_);
    p->in_fd_ = p->out_fd_ = -1;
    p->pid_ = -1;
    throw DriverFailure("driver '" + command + "': cannot start /bin/sh: " + std::strerror(rc));
  }
  // D-HELLO
  const nlohmann::json hello{{"op", "hello"}, {"protocol", kProtocolVersion}};
  Reply r = p->call(hello, timeout);
  if (!r.ok())
    p->fail("[D-HELLO] it refused hello: " + r.error().message(), hello);
  try {
    if (r.body.at("protocol").get<int>() != kProtocolVersion)
      p->fail("[D-VERSION] it speaks protocol " + r.body.at("protocol").dump() + ", this suite speaks 1", hello);
    p->hello_.name = r.body.value("name", std::string("?"));
    p->hello_.version = r.body.value("version", std::string("?"));
    for (const auto& c : r.body.at("capabilities")) p->hello_.capabilities.insert(c.get<std::string>());
    if (r.body.contains("crash_points"))
      for (const auto& c : r.body.at("crash_points")) p->hello_.crash_points.push_back(c.get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    p->fail(std::string("[D-HELLO] its hello answer is malformed: ") + e.what(), hello);
  }
  return p;
}

DriverProcess::~DriverProcess() {
  close_stdin();
  if (pid_ > 0 && !exited_ && reaps_) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!reap(false) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!exited_) kill9();
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (remove_stderr_) ::unlink(stderr_path_.c_str());
}

void DriverProcess::close_stdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

bool DriverProcess::reap(bool block) {
  if (exited_ || pid_ <= 0 || !reaps_) return exited_;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  if (r == pid_) {
    exited_ = true;
    status_ = st;
  }
  return exited_;
}

std::string DriverProcess::describe_exit() const {
  if (!exited_) return "still running";
  if (WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
  return "exited with status " + std::to_string(WEXITSTATUS(status_));
}

std::string DriverProcess::stderr_tail(std::size_t max_bytes) const {
  std::ifstream in(stderr_path_, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() > max_bytes) all = "..." + all.substr(all.size() - max_bytes);
  while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
  return all;
}

void DriverProcess::fail(const std::string& what, const nlohmann::json& request) {
  kill9();
  std::string m = "driver '" + command_ + "' (" + role_ + ", pid " + std::to_string(pid_) + "): " + what +
                  "\n  request: " + clip(request.dump()) +
                  "\n  last line it printed: " + (last_line_.empty() ? "(none)" : clip(last_line_)) +
                  "\n  process: " + describe_exit();
  const std::string err = stderr_tail();
  if (!err.empty()) m += "\n  its stderr ends: " + err;
  throw DriverFailure(m);
}

void DriverProcess::send(nlohmann::json request) {
  request["id"] = request.value("op", std::string()) == "hello" ? 0 : next_id_++;
  pending_ = request;
  // The invocation is before the line leaves: the driver may act on it
  // before write() returns here.
  invoke_ns_ = monotonic_ns();
  if (in_fd_ < 0) fail("[D-PROC] its stdin is already closed", request);
  const std::string line = request.dump() + "\n";
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(in_fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reap(false);
      fail("[D-PROC] writing the request failed (" + std::string(std::strerror(errno)) + "): the driver is gone", request);
    }
    done += static_cast<std::size_t>(n);
  }
}

Reply DriverProcess::receive(std::chrono::milliseconds timeout) {
  const std::uint64_t invoke = invoke_ns_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      last_line_ = line;
      Reply r;
      r.invoke_ns = invoke;
      r.response_ns = monotonic_ns();
      try {
        r.body = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        fail("[D-FRAME] it printed a line that is not JSON", pending_);
      }
      if (!r.body.is_object() || !r.body.contains("ok") || !r.body["ok"].is_boolean())
        fail("[D-FRAME] its answer has no boolean \"ok\"", pending_);
      if (r.body.value("id", std::int64_t{-2}) != pending_.value("id", std::int64_t{-1}))
        fail("[D-FRAME] its answer carries id " + r.body.value("id", nlohmann::json()).dump() + ", the request had " +
                 pending_["id"].dump(),
             pending_);
      if (!r.ok() && !r.body.contains("error")) fail("[D-ERRORS] a failed answer names no \"error\"", pending_);
      return r;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      fail("[D-TIME] no answer within " + std::to_string(timeout.count()) + " ms", pending_);
    const int wait_ms = static_cast<int>(std::min<std::int64_t>(
        100, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    pollfd pfd{out_fd_, POLLIN, 0};
    const int pr = ::poll(&pfd, 1, wait_ms);
    if (pr < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno), pending_);
    if (pr <= 0) continue;
    char chunk[65536];
    const ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EOF: the process closed stdout, i.e. it is gone
      for (int i = 0; i < 200 && !reap(false); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      fail("[D-PROC] it closed its stdout without answering", pending_);
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

Reply DriverProcess::call(nlohmann::json request, std::chrono::milliseconds timeout) {
  send(std::move(request));
  return receive(timeout);
}

bool DriverProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void DriverProcess::kill9() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

void DriverProcess::forget() {
  exited_ = true;  // from here on its owner signals and reaps it
}
void DriverProcess::stop() {
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGSTOP);
}
void DriverProcess::resume() {
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGCONT);
}
void DriverProcess::terminate() {
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGTERM);
}

}  // namespace memlink::conformance::driver
