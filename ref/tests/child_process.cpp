#include "child_process.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/platform.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#endif

namespace memlink::shm::test {
namespace {

constexpr const char* kRoleFlag = "--memlink-child=";

std::map<std::string, ChildRoleMain>& roles() {
  static std::map<std::string, ChildRoleMain> r;
  return r;
}

std::string& self_path() {
  static std::string p;
  return p;
}

const std::string& self_path_or_throw() {
  if (self_path().empty()) throw std::logic_error("ChildProcess::start before run_child_role (child_process.hpp)");
  return self_path();
}

}  // namespace

ChildRole::ChildRole(const char* name, ChildRoleMain main) { roles()[name] = main; }

std::optional<int> run_child_role(int argc, char** argv) {
#if defined(_WIN32)
  char buf[MAX_PATH + 1] = {};
  const DWORD n = GetModuleFileNameA(nullptr, buf, MAX_PATH);
  self_path() = std::string(buf, n);
#else
  // /proc/self/exe where there is one (argv[0] may be a bare name found on PATH).
  char* real = ::realpath("/proc/self/exe", nullptr);
  if (real == nullptr) real = ::realpath(argv[0], nullptr);
  self_path() = real != nullptr ? real : argv[0];
  std::free(real);
#endif
  if (argc < 2 || std::strncmp(argv[1], kRoleFlag, std::strlen(kRoleFlag)) != 0) return std::nullopt;
  const std::string role = argv[1] + std::strlen(kRoleFlag);
  const auto it = roles().find(role);
  if (it == roles().end()) {
    std::fprintf(stderr, "unknown child role '%s'\n", role.c_str());
    return 2;
  }
  return it->second(std::vector<std::string>(argv + 2, argv + argc));
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), handle_(o.handle_), running_(o.running_) {
  o.running_ = false;
  o.handle_ = 0;
}

ChildProcess::~ChildProcess() {
  if (running_) kill();
#if defined(_WIN32)
  if (handle_ != 0) CloseHandle(reinterpret_cast<HANDLE>(handle_));
#endif
}

#if defined(_WIN32)

namespace {
// One argument quoted the way CommandLineToArgvW and the C runtime parse it.
std::string quote(const std::string& arg) {
  std::string out = "\"";
  std::size_t backslashes = 0;
  for (char c : arg) {
    if (c == '\\') {
      ++backslashes;
      continue;
    }
    out.append(c == '"' ? 2 * backslashes + 1 : backslashes, '\\');
    backslashes = 0;
    out += c;
  }
  out.append(2 * backslashes, '\\');
  return out + "\"";
}
}  // namespace

ChildProcess ChildProcess::start(const std::string& role, const std::vector<std::string>& args) {
  std::string cmd = quote(self_path_or_throw()) + " " + quote(kRoleFlag + role);
  for (const auto& a : args) cmd += " " + quote(a);
  STARTUPINFOA si{};
  si.cb = sizeof si;
  PROCESS_INFORMATION pi{};
  if (!CreateProcessA(self_path().c_str(), cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi))
    throw std::runtime_error("CreateProcess " + cmd + ": " + platform::last_error_text());
  CloseHandle(pi.hThread);
  ChildProcess c;
  c.pid_ = pi.dwProcessId;
  c.handle_ = reinterpret_cast<std::intptr_t>(pi.hProcess);
  c.running_ = true;
  return c;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (!running_) throw std::logic_error("child already reaped");
  const auto h = reinterpret_cast<HANDLE>(handle_);
  if (WaitForSingleObject(h, static_cast<DWORD>(timeout.count())) != WAIT_OBJECT_0) return std::nullopt;
  DWORD code = 0;
  GetExitCodeProcess(h, &code);
  running_ = false;
  return static_cast<int>(code);
}

void ChildProcess::kill() {
  if (!running_) return;
  const auto h = reinterpret_cast<HANDLE>(handle_);
  TerminateProcess(h, 128 + 9);
  WaitForSingleObject(h, INFINITE);
  running_ = false;
}

#else

ChildProcess ChildProcess::start(const std::string& role, const std::vector<std::string>& args) {
  std::vector<std::string> all{self_path_or_throw(), kRoleFlag + role};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int r = ::posix_spawn(&pid, self_path().c_str(), nullptr, nullptr, argv.data(), environ);
  if (r != 0) throw std::runtime_error("posix_spawn " + self_path() + ": " + std::strerror(r));
  ChildProcess c;
  c.pid_ = static_cast<std::uint32_t>(pid);
  c.running_ = true;
  return c;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (!running_) throw std::logic_error("child already reaped");
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(static_cast<pid_t>(pid_), &status, WNOHANG);
    if (r == static_cast<pid_t>(pid_)) {
      running_ = false;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (r < 0) throw std::runtime_error("waitpid: " + platform::last_error_text());
    if (std::chrono::steady_clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ChildProcess::kill() {
  if (!running_) return;
  ::kill(static_cast<pid_t>(pid_), SIGKILL);
  ::waitpid(static_cast<pid_t>(pid_), nullptr, 0);
  running_ = false;
}

#endif

SharedFlags SharedFlags::create(const std::string& path) {
  auto seg = MmapSegment::create(path, MIN_SEGMENT_SIZE);
  if (!seg) throw std::runtime_error(seg.error().message());
  return SharedFlags(std::move(*seg));
}

SharedFlags SharedFlags::open(const std::string& path) {
  auto seg = MmapSegment::open(path);
  if (!seg) throw std::runtime_error(seg.error().message());
  return SharedFlags(std::move(*seg));
}

std::atomic<std::uint32_t>* SharedFlags::word(std::size_t i) const {
  if (i >= kCount) throw std::out_of_range("SharedFlags index");
  static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
  return reinterpret_cast<std::atomic<std::uint32_t>*>(segment_.data() + 64 * i);  // a cache line each
}

void SharedFlags::set(std::size_t i, std::uint32_t value) { word(i)->store(value, std::memory_order_release); }

std::uint32_t SharedFlags::get(std::size_t i) const { return word(i)->load(std::memory_order_acquire); }

bool SharedFlags::wait_for(std::size_t i, std::uint32_t value, std::chrono::milliseconds timeout) const {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (get(i) < value) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace memlink::shm::test
