#include "memlink/shm/futex.hpp"

#include <gtest/gtest.h>

#if !defined(_WIN32)
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <thread>

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;

TEST(Futex, ChangedValueReturnsAtOnce) {
  std::atomic<std::uint32_t> w{5};
  Futex f(&w);
  EXPECT_TRUE(f.wait(4, 10s).ok());  // 5 != 4: no sleep
}

TEST(Futex, TimesOut) {
  std::atomic<std::uint32_t> w{0};
  Futex f(&w);
  auto s = f.wait(0, 20ms);
  EXPECT_EQ(s.code(), ErrorCode::Timeout);
}

TEST(Futex, WakeWithNoWaiterWakesNobody) {
  std::atomic<std::uint32_t> w{0};
  Futex f(&w);
  auto r = f.wake_all();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
}

TEST(Futex, InvalidArguments) {
  Futex null(nullptr);
  EXPECT_EQ(null.wait(0, 1ms).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(null.wake_one().code(), ErrorCode::InvalidArgument);
  std::atomic<std::uint32_t> w{0};
  EXPECT_EQ(Futex(&w).wait(0, -1ms).code(), ErrorCode::InvalidArgument);
}

TEST(Futex, WakesAThread) {
  std::atomic<std::uint32_t> w{0};
  Futex f(&w);
  std::thread t([&] {
    while (w.load() == 0) (void)f.wait(0, 5s);
  });
  std::this_thread::sleep_for(20ms);
  w.store(1);
  (void)f.wake_all();
  t.join();
  EXPECT_EQ(w.load(), 1u);
}

#if !defined(_WIN32)
// (On every platform, ref/tests/two_process_test.cpp has the same test with
// a child process started afresh instead of forked.)
// The crate's defect: a process-private futex never wakes another process.
// A child sleeps with no timeout on a word in MAP_SHARED memory; only a wake
// that crosses processes lets it exit before the watchdog kills it.
TEST(Futex, WakesAnotherProcess) {
  void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* word = new (mem) std::atomic<std::uint32_t>(0);
  auto* ready = new (static_cast<char*>(mem) + 64) std::atomic<std::uint32_t>(0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);  // watchdog: a lost wake kills the child with SIGALRM
    Futex f(word);
    ready->store(1);
    while (word->load() == 0) (void)f.wait(0);  // no timeout
    ::_exit(0);
  }
  while (ready->load() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);  // let it go to sleep in the kernel
  word->store(1);
  Futex f(word);
  (void)f.wake_all();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child did not wake (status " << status << ")";
  ::munmap(mem, 4096);
}

void on_usr1(int) {}

TEST(Futex, SignalInterruptsAWait) {
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  std::atomic<std::uint32_t> w{0};
  std::atomic<bool> done{false};
  Status result;
  std::thread t([&] {
    Futex f(&w);
    result = f.wait(0, 10s);
    done.store(true);
  });
  // Keep signalling until the wait returns: a signal that lands before the
  // thread is asleep only runs the handler.
  while (!done.load()) {
    ::pthread_kill(t.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(5ms);
  }
  t.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(result.code(), ErrorCode::Interrupted);
}
#endif  // !_WIN32

TEST(Futex, BackendNameIsKnown) {
#if defined(__linux__)
  EXPECT_STREQ(Futex::backend(), "linux-futex");
#elif defined(_WIN32)
  EXPECT_STREQ(Futex::backend(), "windows-named-event");
#elif defined(__APPLE__)
  EXPECT_STREQ(Futex::backend(), "macos-ulock-shared");
#endif
}

}  // namespace
}  // namespace memlink::shm
