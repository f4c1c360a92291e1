// Multi-process tests without fork(): the second process is this same test
// binary started again in a named child role,
//
//     <this binary> --memlink-child=<role> ARGS...
//
// with posix_spawn on Linux and macOS and CreateProcess on Windows, so the
// tests that use it are the same code on every platform. A test binary with
// child roles links child_main.cpp as its main(); another program calls
// run_child_role() first thing in main().
//
// SharedFlags is how parent and child hand off without pipes: a few atomic
// words in a small mapped file, polled.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memlink/shm/mmap.hpp"

namespace memlink::shm::test {

// A child role: gets the ARGS after the role, returns the exit status.
using ChildRoleMain = int (*)(const std::vector<std::string>& args);

// Registers a role at static-initialisation time.
struct ChildRole {
  ChildRole(const char* name, ChildRoleMain main);
};

// Defines and registers a child role: MEMLINK_CHILD_ROLE(fn, "name") { ... }
// with `args` in scope.
#define MEMLINK_CHILD_ROLE(fn, name)                                   \
  int fn(const std::vector<std::string>& args);                        \
  const ::memlink::shm::test::ChildRole fn##_role_{name, &fn};         \
  int fn(const std::vector<std::string>& args)

// If argv names a child role, runs it and returns its exit status;
// otherwise nullopt (the program goes on as itself). Call it first in main().
std::optional<int> run_child_role(int argc, char** argv);

class ChildProcess {
 public:
  // Starts this binary in `role`. Throws std::runtime_error naming the cause.
  static ChildProcess start(const std::string& role, const std::vector<std::string>& args = {});

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();  // kills the child if it is still running

  std::uint32_t pid() const noexcept { return pid_; }
  // Its exit status (128 + signal if a signal killed it), or nullopt if it is
  // still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Kills it the hard way (SIGKILL; TerminateProcess) and reaps it.
  void kill();

 private:
  ChildProcess() = default;
  std::uint32_t pid_ = 0;
  std::intptr_t handle_ = 0;  // the process HANDLE on Windows
  bool running_ = false;
};

// Sixteen 32-bit words shared by the processes that open the same path.
class SharedFlags {
 public:
  static constexpr std::size_t kCount = 16;
  // Creates the file (the parent, before starting children).
  static SharedFlags create(const std::string& path);
  // Opens it (a child).
  static SharedFlags open(const std::string& path);

  void set(std::size_t i, std::uint32_t value);
  std::uint32_t get(std::size_t i) const;
  // Polls until word i is at least `value`; false after `timeout`.
  bool wait_for(std::size_t i, std::uint32_t value, std::chrono::milliseconds timeout) const;
  // The word itself (for futex tests), on a cache line of its own.
  std::atomic<std::uint32_t>* word(std::size_t i) const;
  const std::string& path() const noexcept { return segment_.path(); }

 private:
  explicit SharedFlags(MmapSegment segment) : segment_(std::move(segment)) {}
  MmapSegment segment_;
};

}  // namespace memlink::shm::test
