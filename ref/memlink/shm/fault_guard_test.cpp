// SPEC M-TRUNCATE: a peer that shrinks the segment under a live daemon and a
// live client kills neither; both report it by name, and nothing read from or
// written to the vanished pages is delivered or acknowledged.
#include "memlink/shm/fault_guard.hpp"

#include <gtest/gtest.h>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <chrono>
#include <string>
#include <thread>

#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

namespace memlink::shm {
namespace {

#if !defined(_WIN32)
using namespace std::chrono_literals;

bool names_truncation(const Error& e) {
  return e.code == ErrorCode::CorruptSegment && e.detail.find("M-TRUNCATE") != std::string::npos &&
         e.detail.find("truncated") != std::string::npos;
}

// An endpoint's wait looks at the file's size once per sleep slice it
// sleeps (SPEC M-TRUNCATE, T-WAIT). A wait of 10 ms whose deadline passed
// before its first slice (the thread descheduled on a loaded machine) slept
// none and rightly says Timeout, so the endpoint is asked again, a bounded
// number of times, until it answers something else: one that never looks
// still fails, after 1000 waits.
template <class Endpoint>
Status wait_past_timeouts(Endpoint& e) {
  Status s = e.wait(10ms);
  for (int i = 0; i < 1000 && !s.ok() && s.code() == ErrorCode::Timeout; ++i) s = e.wait(10ms);
  return s;
}

// The daemon runs its heartbeat thread (it touches the control region every
// millisecond) and the client is mid-exchange when the file shrinks.
class TruncatedSegment : public ::testing::TestWithParam<std::size_t> {};

TEST_P(TruncatedSegment, NeitherDaemonNorClientDiesAndBothSayWhy) {
  test::TempSegmentPath path("trunc");
  DaemonOptions dopt;
  dopt.heartbeat_interval = 1ms;
  dopt.heartbeat_timeout = 50ms;
  auto daemon = Daemon::create(path.str(), 64 * 1024, 1, dopt);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto client = Client::connect(path.str(), 1);
  ASSERT_TRUE(client.ok()) << client.error().message();
  ASSERT_TRUE(client->write(Priority::High, "before").ok());
  ASSERT_TRUE(daemon->read().ok());

  ASSERT_EQ(::truncate(path.str().c_str(), static_cast<off_t>(GetParam())), 0);
  std::this_thread::sleep_for(20ms);  // the heartbeat thread runs into the hole (if page 0 went)

  // An idle endpoint notices within one sleep slice (it may touch no page
  // that went), and from then on every operation fails by name; none kills.
  auto s = wait_past_timeouts(*client);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(names_truncation(s.error())) << s.error().message();
  auto ds = wait_past_timeouts(*daemon);
  ASSERT_FALSE(ds.ok());
  EXPECT_TRUE(names_truncation(ds.error())) << ds.error().message();
  auto w = client->write(Priority::High, "after");
  ASSERT_FALSE(w.ok()) << "a write into vanished pages was acknowledged";
  EXPECT_TRUE(names_truncation(w.error())) << w.error().message();
  auto r = daemon->read();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(names_truncation(r.error())) << r.error().message();
  auto d = daemon->write(Priority::Low, "answer");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(names_truncation(d.error())) << d.error().message();
  EXPECT_FALSE(daemon->fenced()) << "a lost segment reads epoch 0; that is not a successor";
  EXPECT_FALSE(client->is_connected());
  client->shutdown();
  daemon->shutdown();
}

// 0: every page goes; 4096: the control region stays, the rings go; the
// last page only: a ring's last slots go.
INSTANTIATE_TEST_SUITE_P(ToSize, TruncatedSegment, ::testing::Values(0, 4096, 60 * 1024),
                         [](const auto& info) { return "to_" + std::to_string(info.param); });

// The first access to a vanished page is the operation's own: the write's
// store lands on zero pages and must not be acknowledged, the read's load
// must not deliver (nothing noticed the shrink before).
TEST(FaultGuard, AnOperationWhoseOwnAccessFaultsFailsByName) {
  test::TempSegmentPath path("trunc-own");
  DaemonOptions dopt;
  dopt.heartbeat_interval = 0ms;  // no thread touches the segment behind the test's back
  auto daemon = Daemon::create(path.str(), 64 * 1024, 1, dopt);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto client = Client::connect(path.str(), 1);
  ASSERT_TRUE(client.ok()) << client.error().message();
  ASSERT_TRUE(client->write(Priority::Critical, "queued").ok());
  ASSERT_EQ(::truncate(path.str().c_str(), 4096), 0);  // the control region stays; every ring goes
  auto w = client->write(Priority::Critical, "after");
  ASSERT_FALSE(w.ok()) << "a write whose store faulted was acknowledged";
  EXPECT_TRUE(names_truncation(w.error())) << w.error().message();
}

// The truncation and a silent daemon at once (under load the 1 ms heartbeat
// thread above can be starved past the client's timeout): the client's wait
// must name the truncation, not only the silence, and from then on every
// operation fails by name. Staged without timing: no heartbeat thread, the
// heartbeat stamped long ago, the interval made short.
TEST(FaultGuard, ASilentDaemonDoesNotHideATruncation) {
  test::TempSegmentPath path("trunc-silent");
  DaemonOptions dopt;
  dopt.heartbeat_interval = 0ms;  // nothing stamps: the daemon looks silent
  auto daemon = Daemon::create(path.str(), 64 * 1024, 1, dopt);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  auto client = Client::connect(path.str(), 1);
  ASSERT_TRUE(client.ok()) << client.error().message();
  daemon->control().heartbeat_interval_ns.store(1'000'000);  // client timeout 10 ms
  daemon->control().heartbeat_ns.store(1);                   // stamped long ago
  ASSERT_EQ(::truncate(path.str().c_str(), static_cast<off_t>(60 * 1024)), 0);  // a ring's last slots go
  auto s = client->wait(10ms);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(names_truncation(s.error())) << s.error().message();
  auto w = client->write(Priority::High, "after");
  ASSERT_FALSE(w.ok()) << "a write after the truncation was acknowledged";
  EXPECT_TRUE(names_truncation(w.error())) << w.error().message();
}

// An access past the new end faults; the handler absorbs it.
TEST(FaultGuard, AnAccessPastTheNewEndIsAbsorbed) {
  test::TempSegmentPath path("trunc-fault");
  auto seg = MmapSegment::create(path.str(), 64 * 1024);
  ASSERT_TRUE(seg.ok()) << seg.error().message();
  const std::uint64_t before = fault_guard::absorbed_faults();
  ASSERT_EQ(::truncate(path.str().c_str(), 4096), 0);
  volatile std::byte* p = seg->data();
  p[8192] = std::byte{7};  // SIGBUS without the guard
  EXPECT_EQ(static_cast<int>(p[8192]), 7);  // private pages now: the store landed there
  EXPECT_EQ(static_cast<int>(p[0]), 0);     // and the whole mapping is zero pages, page 0 too
  EXPECT_TRUE(seg->lost());
  EXPECT_EQ(fault_guard::absorbed_faults(), before + 1);
  EXPECT_TRUE(names_truncation(seg->lost_error())) << seg->lost_error().message();
}

TEST(FaultGuard, ASegmentThatShrankBeforeConnectIsRefusedNotFatal) {
  test::TempSegmentPath path("trunc-connect");
  DaemonOptions dopt;
  dopt.heartbeat_interval = 0ms;  // nothing of the daemon touches the segment meanwhile
  auto daemon = Daemon::create(path.str(), 64 * 1024, 1, dopt);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message();
  ASSERT_EQ(::truncate(path.str().c_str(), 2048), 0);  // below the minimum: refused by size
  auto client = Client::connect(path.str(), 1);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.code(), ErrorCode::CorruptSegment) << client.error().message();
}

// The guard must not swallow faults that are not ours: a SIGBUS in memory
// nobody registered still kills, as it did before the handler existed.
TEST(FaultGuardDeathTest, AFaultOutsideAGuardedMappingStillKills) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  test::TempSegmentPath path("unguarded");
  auto guarded = MmapSegment::create(path.str() + "-g", 8192);  // installs the handler
  ASSERT_TRUE(guarded.ok()) << guarded.error().message();
  EXPECT_DEATH(
      {
        const int fd = ::open(path.str().c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || ::ftruncate(fd, 8192) != 0) std::_Exit(3);
        auto* p = static_cast<volatile char*>(::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
        if (p == MAP_FAILED || ::ftruncate(fd, 0) != 0) std::_Exit(4);
        // The files go now, while their mappings stay: this process dies
        // below, past every destructor (a death test's child runs the
        // whole body again, under its own pid: its files were left behind).
        ::unlink(path.str().c_str());
        (void)MmapSegment::remove(path.str() + "-g");
        p[100] = 1;  // SIGBUS, and nothing may absorb it
        std::_Exit(0);
      },
      "");
  (void)MmapSegment::remove(path.str() + "-g");
  ::unlink(path.str().c_str());
}

TEST(FaultGuard, AnUnregisteredMappingIsNoLongerMatched) {
  char page[64];
  const int g = fault_guard::register_mapping(page, sizeof page, true);
  ASSERT_NE(g, fault_guard::kNoGuard);
  EXPECT_FALSE(fault_guard::lost(g));
  fault_guard::unregister_mapping(g);
  EXPECT_FALSE(fault_guard::lost(g));
  EXPECT_EQ(fault_guard::register_mapping(nullptr, 10, true), fault_guard::kNoGuard);
  EXPECT_EQ(fault_guard::register_mapping(page, 0, true), fault_guard::kNoGuard);
}
#endif

}  // namespace
}  // namespace memlink::shm
