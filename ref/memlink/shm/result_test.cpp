#include "memlink/shm/result.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>

#include "memlink/shm/transport.hpp"
#include "test_support.hpp"

// Counts this thread's calls of the global operator new while `counting` is
// set: the whole unit-test binary goes through these (malloc/free, which is
// what the default ones do, and what the sanitizers intercept).
namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;

// The allocations `f` makes on this thread.
template <class F>
std::size_t allocations_of(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations;
}

TEST(Error, AFixedTextIsTheTextAndTheMessage) {
  const Error full = fixed_error(ErrorCode::Full, "ring[c2d/high] is full");
  EXPECT_TRUE(full.detail.empty());
  EXPECT_EQ(full.text(), "ring[c2d/high] is full");
  EXPECT_EQ(full.message(), "Full: ring[c2d/high] is full");
  const Error corrupt = make_error(ErrorCode::CorruptSegment, "control.magic: wrong");
  EXPECT_EQ(corrupt.text(), "control.magic: wrong");
  EXPECT_EQ(make_error(ErrorCode::Empty).message(), "Empty");
}

// The outcomes a polling loop expects cost no allocation: a writer that
// finds its ring full, a reader (or peek) that finds nothing, through the
// transport's API. (A detail string built with the error would call malloc
// once per poll: a million times a second in a spinning reader.)
TEST(Error, ExpectedOutcomesAllocateNothing) {
  test::TempSegmentPath path{"alloc"};
  auto d = Daemon::create(path.str(), 64 * 1024, 1);
  ASSERT_TRUE(d.ok()) << d.error().message();
  auto c = Client::connect(path.str(), 1);
  ASSERT_TRUE(c.ok()) << c.error().message();
  const std::string payload(16, 'x');
  while (c->write(Priority::Low, std::string_view(payload)).ok()) {
  }
  ASSERT_EQ(c->write(Priority::Low, std::string_view(payload)).code(), ErrorCode::Full);
  int not_full = 0, not_empty = 0;  // counted inside, asserted outside (gtest's macros may allocate)
  EXPECT_EQ(allocations_of([&] {
              for (int i = 0; i < 1000; ++i)
                not_full += c->write(Priority::Low, std::string_view(payload)).code() != ErrorCode::Full;
            }),
            0u);
  EXPECT_EQ(not_full, 0);
  EXPECT_EQ(c->write(Priority::Low, std::string_view(payload)).error().text(), "ring[c2d/low] is full");
  (void)c->read();  // the first read sizes the endpoint's read buffer, once
  EXPECT_EQ(allocations_of([&] {
              for (int i = 0; i < 1000; ++i) {
                not_empty += c->read().code() != ErrorCode::Empty;  // nothing was sent to the client
                not_empty += c->peek().code() != ErrorCode::Empty;
              }
            }),
            0u);
  EXPECT_EQ(not_empty, 0);
  // And the counter counts: a delivered message does allocate (its payload).
  EXPECT_GT(allocations_of([&] { EXPECT_TRUE(d->read().ok()); }), 0u);
}

}  // namespace
}  // namespace memlink::shm
