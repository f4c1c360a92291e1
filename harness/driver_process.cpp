#include "driver_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string_view>
#include <thread>
#include <variant>

#include "driver_json.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/platform.hpp"

extern char** environ;

namespace memlink::conformance::driver {
namespace {

using shm::platform::monotonic_ns;

// A driver's text in a message: valid UTF-8, cut on a character boundary.
std::string clip(std::string_view s, std::size_t n = 300) { return printable_utf8(s, n); }

// The last answer line this thread received, clipped: what a type error in
// a check's reading of an answer is shown with.
thread_local std::string t_last_answer;

// The suite must not die of SIGPIPE when a driver has exited.
void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

}  // namespace

shm::Error Reply::error() const {
  // receive() has checked both are strings where present (D-ERRORS).
  const auto field = [&](const char* key) {
    const auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string name = field("error");
  const auto code = error_code_from_name(name);
  std::string detail = field("detail");
  if (!code)
    return shm::make_error(shm::ErrorCode::InvalidArgument, "the driver answered error '" + name + "': " + detail);
  return shm::make_error(*code, detail);
}

namespace {

// Both ends of two pipes: the driver reads requests from in[0] and writes
// answers to out[1]; the suite keeps in[1] and out[0].
struct Pipes {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
};
Pipes make_pipes(const std::string& name) {
  Pipes p;
  if (::pipe2(p.in, O_CLOEXEC) != 0 || ::pipe2(p.out, O_CLOEXEC) != 0)
    throw DriverFailure("driver '" + name + "': cannot make pipes: " + std::strerror(errno));
  return p;
}

// A driver's stderr file, when its starter names one: created or emptied,
// never through a link planted at the name. (Not O_CLOEXEC: it is the
// child's fd 2 across its exec; closed there, the next file the driver
// opens would become fd 2 and take its log lines.)
constexpr int kStderrFileFlags = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW;

std::size_t clamp_size(std::size_t want, std::size_t lo, std::size_t hi) { return std::min(std::max(want, lo), hi); }

}  // namespace

std::string type_error_text(const nlohmann::json::exception& e) {
  return std::string("an answer lacks a field the check needs, or has one of the wrong type (") + e.what() + ")" +
         (t_last_answer.empty() ? std::string() : "; the last answer was: " + t_last_answer);
}

bool forking_allowed() {
#if defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

Limits spec_limits() {
  Limits l;
  l.min_segment = shm::MIN_SEGMENT_SIZE;
  l.max_segment = shm::MAX_SEGMENT_SIZE;
  l.min_slot = 1;
  l.max_slot = shm::MAX_SLOT_SIZE;
  return l;
}

std::size_t Limits::segment(std::size_t want) const { return clamp_size(want, min_segment, max_segment); }
std::uint32_t Limits::slot(std::uint32_t want) const {
  return static_cast<std::uint32_t>(clamp_size(want, min_slot, max_slot));
}

Hello parse_hello(const nlohmann::json& r) {
  Hello h;
  try {
    h.protocol = integer<int>(r, "protocol");
    h.name = r.value("name", std::string("?"));
    h.version = r.value("version", std::string("?"));
    for (const auto& c : r.at("capabilities")) h.capabilities.insert(c.get<std::string>());
    if (r.contains("crash_points"))
      for (const auto& c : r.at("crash_points")) h.crash_points.push_back(c.get<std::string>());
    h.limits = spec_limits();
    if (h.protocol == 1 && r.contains("max_payload")) h.limits.max_slot = integer<std::uint32_t>(r, "max_payload");
    if (h.protocol >= 2 && r.contains("limits")) {
      const auto& l = r.at("limits");
      if (l.contains("segment_size")) {
        h.limits.min_segment = integer_or(l["segment_size"], "min", h.limits.min_segment);
        h.limits.max_segment = integer_or(l["segment_size"], "max", h.limits.max_segment);
      }
      if (l.contains("slot_size")) {
        h.limits.min_slot = integer_or(l["slot_size"], "min", h.limits.min_slot);
        h.limits.max_slot = integer_or(l["slot_size"], "max", h.limits.max_slot);
      }
      if (l.contains("capacity")) {
        std::array<std::uint32_t, 3> c{};
        for (std::size_t p = 0; p < 3; ++p) c[p] = integer<std::uint32_t>(l["capacity"].at(p));
        h.limits.capacity = c;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw DriverFailure(std::string("its hello answer is malformed: ") + e.what(), spec::DriverRule::D_HELLO);
  }
  if (h.limits.min_segment > h.limits.max_segment || h.limits.min_slot > h.limits.max_slot || h.limits.min_slot == 0)
    throw DriverFailure("its limits are empty ranges: segment_size " + std::to_string(h.limits.min_segment) + ".." +
                            std::to_string(h.limits.max_segment) + ", slot_size " + std::to_string(h.limits.min_slot) +
                            ".." + std::to_string(h.limits.max_slot),
                        spec::DriverRule::D_LIMITS);
  return h;
}

std::unique_ptr<DriverProcess> DriverProcess::start(const std::string& command, const std::string& role,
                                                    std::chrono::milliseconds timeout, StartOptions options) {
  ignore_sigpipe();
  std::unique_ptr<DriverProcess> p(new DriverProcess());
  p->command_ = command;
  p->role_ = role;
  p->reaps_ = options.reaps;
  p->stderr_path_ = options.stderr_path;
  Pipes pipes = make_pipes(command);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipes.in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, pipes.out[1], 1);
  if (p->stderr_path_.empty()) {
    p->stderr_ = p->make_stderr_tail();
    posix_spawn_file_actions_adddup2(&fa, p->stderr_->write_end(), 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, p->stderr_path_.c_str(), kStderrFileFlags, 0600);
  }
  const std::string exec_line = "exec " + command;
  const char* argv[] = {"/bin/sh", "-c", exec_line.c_str(), nullptr};
  // A process group of its own (pgroup 0: its pid), as every process the
  // suite may stop: if the group that started the suite is orphaned while a
  // driver is held stopped, the kernel's SIGHUP to that group would kill it
  // (chaos/orphaned_group_test.sh). Once the suite is gone, a driver reads
  // end of file and exits; one left stopped is in an orphaned group of its
  // own then, and that SIGHUP ends it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  const int rc = ::posix_spawn(&p->pid_, "/bin/sh", &fa, &attr, const_cast<char**>(argv), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipes.in[0]);
  ::close(pipes.out[1]);
  if (p->stderr_) p->stderr_->start();
  p->in_fd_ = pipes.in[1];
  p->out_fd_ = pipes.out[0];
  if (rc != 0) {
    ::close(p->in_fd_);
    ::close(p->out_fd_);
    p->in_fd_ = p->out_fd_ = -1;
    p->pid_ = -1;
    throw DriverFailure("driver '" + command + "': cannot start /bin/sh: " + std::strerror(rc));
  }
  return greet(std::move(p), timeout);
}

std::unique_ptr<DriverProcess> DriverProcess::start_thread(Server server, const std::string& name,
                                                           const std::string& role, std::chrono::milliseconds timeout) {
  ignore_sigpipe();
  std::unique_ptr<DriverProcess> p(new DriverProcess());
  p->command_ = name;
  p->role_ = role;
  p->threaded_ = true;
  p->pid_ = ::getpid();  // it shares this process's stderr
  Pipes pipes = make_pipes(name);
  p->in_fd_ = pipes.in[1];
  p->out_fd_ = pipes.out[0];
  p->thread_done_ = std::make_shared<std::atomic<bool>>(false);
  p->thread_ = std::thread([server = std::move(server), in = pipes.in[0], out = pipes.out[1], done = p->thread_done_] {
    server(in, out);
    ::close(in);
    ::close(out);
    done->store(true);
  });
  return greet(std::move(p), timeout);
}

std::unique_ptr<DriverProcess> DriverProcess::start_forked(Server server, const std::string& name,
                                                           const std::string& role, std::chrono::milliseconds timeout,
                                                           const std::string& exec_path) {
  if (!forking_allowed())
    throw DriverFailure("driver '" + name +
                        "': a forked process is not available under ThreadSanitizer (its "
                        "runtime forbids threads in the child of a threaded parent)");
  ignore_sigpipe();
  std::unique_ptr<DriverProcess> p(new DriverProcess());
  p->command_ = name;
  p->role_ = role;
  p->stderr_ = p->make_stderr_tail();
  const int err = p->stderr_->write_end();
  Pipes pipes = make_pipes(name);
  char* const exec_argv[] = {const_cast<char*>(exec_path.c_str()), nullptr};  // before the fork: no allocation after it
  const pid_t pid = ::fork();
  if (pid < 0) throw DriverFailure("driver '" + name + "': fork failed: " + std::strerror(errno));
  if (pid == 0) {
    // The child keeps its two pipe ends and a stderr of its own, nothing
    // else of the suite's (another driver's pipe kept open here would hide
    // that driver's end of file; a lock file's descriptor, its lock).
    ::setpgid(0, 0);  // a group of its own, as start() gives a driver
    ::dup2(pipes.in[0], 0);
    ::dup2(pipes.out[1], 1);
    ::dup2(err, 2);
    ::closefrom(3);
    if (!exec_path.empty()) {
      ::execv(exec_argv[0], exec_argv);
      ::_exit(127);
    }
    ::_exit(server(0, 1));
  }
  p->pid_ = pid;
  ::close(pipes.in[0]);
  ::close(pipes.out[1]);
  p->stderr_->start();
  p->in_fd_ = pipes.in[1];
  p->out_fd_ = pipes.out[0];
  return greet(std::move(p), timeout);
}

// D-HELLO, D-VERSION: protocol 2 first; a driver that refuses it with
// ProtocolMismatch is asked for protocol 1, which this suite still runs.
std::unique_ptr<DriverProcess> DriverProcess::greet(std::unique_ptr<DriverProcess> p,
                                                    std::chrono::milliseconds timeout) {
  nlohmann::json hello{{"op", "hello"}, {"protocol", kProtocolVersion}};
  Reply r = p->call(hello, timeout);
  if (!r.ok() && r.error().code == shm::ErrorCode::ProtocolMismatch) {
    const std::string refused = r.error().message();
    hello["protocol"] = kOldestProtocolVersion;
    r = p->call(hello, timeout);
    if (!r.ok())
      p->fail(spec::DriverRule::D_VERSION,
              "it refused both protocol " + std::to_string(kProtocolVersion) + " (" + refused + ") and protocol " +
                  std::to_string(kOldestProtocolVersion) + " (" + r.error().message() +
                  "); this suite speaks those two",
              hello);
  }
  if (!r.ok()) p->fail(spec::DriverRule::D_HELLO, "it refused hello: " + r.error().message(), hello);
  const int asked = hello["protocol"].get<int>();
  try {
    p->hello_ = parse_hello(r.body);
  } catch (const DriverFailure& e) {
    p->fail(e.rule, e.what(), hello);
  }
  if (p->hello_.protocol != asked)
    p->fail(spec::DriverRule::D_VERSION,
            "asked for protocol " + std::to_string(asked) + ", it answered protocol " +
                std::to_string(p->hello_.protocol) + "; this suite speaks protocols " +
                std::to_string(kOldestProtocolVersion) + " and " + std::to_string(kProtocolVersion),
            hello);
  return p;
}

DriverProcess::~DriverProcess() {
  close_stdin();
  if (threaded_) {
    // The server ends at end of file; one still inside a long request (a
    // wait) is left to finish on its own after 2 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!thread_done_->load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (thread_done_->load())
      thread_.join();
    else
      thread_.detach();
  } else if (pid_ > 0 && !exited_ && reaps_) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!reap(false) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!exited_) kill9();
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::unique_ptr<StderrTail> DriverProcess::make_stderr_tail() const {
  try {
    return std::make_unique<StderrTail>();
  } catch (const std::runtime_error& e) {
    throw DriverFailure("driver '" + command_ + "': " + e.what());
  }
}

void DriverProcess::close_stdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

bool DriverProcess::reap(bool block) {
  if (threaded_) {
    if (!exited_ && thread_done_->load()) exited_ = true;
    return exited_;
  }
  if (exited_ || pid_ <= 0 || !reaps_) return exited_;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  if (r == pid_) {
    exited_ = true;
    status_ = st;
  }
  return exited_;
}

void DriverProcess::require_killable(const char* what) const {
  if (threaded_)
    throw std::logic_error(
        std::string("driver '") + command_ + "' (" + role_ + "): cannot " + what +
        " a driver hosted on a thread of the suite; the check must start it as a process of its own");
}

std::string DriverProcess::describe_exit() const {
  if (!exited_) return "still running";
  if (threaded_) return "its thread returned";
  if (WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
  return "exited with status " + std::to_string(WEXITSTATUS(status_));
}

namespace {

// The last bytes of a file, read from its end: a driver's log may be huge.
std::string file_tail(const std::string& path, std::size_t max_bytes, bool& cut) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    const auto size = static_cast<std::size_t>(st.st_size);
    const std::size_t from = size > max_bytes ? size - max_bytes : 0;
    cut = from > 0;
    out.resize(size - from);
    const ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(from));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string DriverProcess::stderr_tail(std::size_t max_bytes) const {
  bool cut = false;
  std::string all;
  if (stderr_) {
    all = stderr_->tail(max_bytes);
    cut = stderr_->total_bytes() > all.size();
  } else if (!stderr_path_.empty()) {
    all = file_tail(stderr_path_, max_bytes, cut);
  }
  // Cut at the front: skip the pieces of a character the cut split.
  std::size_t start = 0;
  while (cut && start < all.size() && start < 3 && (static_cast<unsigned char>(all[start]) & 0xC0) == 0x80) ++start;
  all = printable_utf8(std::string_view(all).substr(start));
  if (cut) all = "..." + all;
  while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
  return all;
}

void DriverProcess::fail(spec::DriverRule broke, const std::string& what, const nlohmann::json& request) {
  if (threaded_)
    close_stdin();
  else
    kill9();
  const std::string who = "driver '" + command_ + "' (" + role_ + ", pid " + std::to_string(pid_) + "): ";
  std::string m = clip(what, 4000) + "\n  request: " + shown(request) +
                  "\n  last line it printed: " + (last_line_.empty() ? "(none)" : clip(last_line_)) +
                  "\n  process: " + describe_exit();
  const std::string err = stderr_tail();
  if (!err.empty()) m += "\n  its stderr ends: " + err;
  throw DriverFailure(who + "[" + std::string(spec::name(broke)) + "] " + m, broke, who + m);
}

void DriverProcess::send(nlohmann::json request) {
  // A crash or pause point is armed for the whole process: on a thread it
  // would arm the suite's own.
  if (threaded_ && request.value("op", std::string()) == "arm") require_killable("arm a crash point in");
  request["id"] = request.value("op", std::string()) == "hello" ? 0 : next_id_++;
  pending_ = request;
  // The invocation is before the line leaves: the driver may act on it
  // before write() returns here.
  invoke_ns_ = monotonic_ns();
  if (in_fd_ < 0) fail(spec::DriverRule::D_PROC, "its stdin is already closed", request);
  const std::string line = request.dump() + "\n";
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(in_fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reap(false);
      fail(spec::DriverRule::D_PROC,
           "writing the request failed (" + std::string(std::strerror(errno)) + "): the driver is gone", request);
    }
    done += static_cast<std::size_t>(n);
  }
}

Reply DriverProcess::receive(std::chrono::milliseconds timeout) {
  const std::uint64_t invoke = invoke_ns_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffer_.find('\n', scanned_); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      scanned_ = 0;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      last_line_ = line;
      t_last_answer = clip(line);
      Reply r;
      r.invoke_ns = invoke;
      r.response_ns = monotonic_ns();
      auto answer = parse_answer(line, pending_["id"]);
      if (const auto* fault = std::get_if<AnswerFault>(&answer)) fail(fault->rule, fault->what, pending_);
      r.body = std::move(std::get<nlohmann::json>(answer));
      return r;
    }
    scanned_ = buffer_.size();
    if (buffer_.size() > kMaxLineBytes)
      fail(spec::DriverRule::D_FRAME,
           "it printed a line longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB without ending it", pending_);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      fail(spec::DriverRule::D_TIME, "no answer within " + std::to_string(timeout.count()) + " ms", pending_);
    const int wait_ms = static_cast<int>(
        std::min<std::int64_t>(100, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    pollfd pfd{out_fd_, POLLIN, 0};
    const int pr = ::poll(&pfd, 1, wait_ms);
    if (pr < 0 && errno != EINTR)
      fail(spec::DriverRule::D_PROC, std::string("poll: ") + std::strerror(errno), pending_);
    if (pr <= 0) continue;
    char chunk[65536];
    const ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EOF: the process closed stdout, i.e. it is gone
      for (int i = 0; i < 200 && !reap(false); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      fail(spec::DriverRule::D_PROC, "it closed its stdout without answering", pending_);
    }
    // Grown by hand to at most the cap and a chunk: doubling past it would
    // hold twice the longest line a driver may print.
    if (buffer_.size() + static_cast<std::size_t>(n) > buffer_.capacity())
      buffer_.reserve(std::min(2 * buffer_.capacity() + sizeof chunk, kMaxLineBytes + sizeof chunk));
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

bool DriverProcess::wait_stopped(std::chrono::milliseconds timeout) {
  require_killable("wait for a stop of");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (exited_ || pid_ <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG | WUNTRACED);
    if (r == pid_ && WIFSTOPPED(st)) return true;
    if (r == pid_) {
      exited_ = true;
      status_ = st;
      return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void DriverProcess::kill9() {
  require_killable("kill");
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

void DriverProcess::forget() {
  exited_ = true;  // from here on its owner signals and reaps it
}
void DriverProcess::stop() {
  require_killable("stop");
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGSTOP);
}
void DriverProcess::resume() {
  require_killable("resume");
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGCONT);
}
void DriverProcess::terminate() {
  require_killable("terminate");
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGTERM);
}

}  // namespace memlink::conformance::driver
