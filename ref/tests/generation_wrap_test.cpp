// SPEC K-CLAIMED at the generation's wrap. The slot word's lap is 24 bits, so
// a writer that stalled between its head CAS and its claim CAS for a
// multiple of 2^24 laps finds a word that looks like its own lap's Empty and
// wins the CAS. claim() must then see the tail past its position and give
// the slot back. The stall is staged with the testing hooks: just before the
// claim CAS, the "consumer" reclaims the position and 2^24 laps go by.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "memlink/shm/buffer.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/slot.hpp"
#include "memlink/shm/testing_hooks.hpp"

namespace memlink::shm {
namespace {

RingHeader& header_of(RingBuffer& ring) {
  return *reinterpret_cast<RingHeader*>(reinterpret_cast<std::byte*>(&ring.slot_header(0)) - RING_HEADER_SIZE);
}

// Runs `stage` once, at the first access of `target` of kind `kind`.
class StageBefore final : public hooks::Interposer {
 public:
  StageBefore(hooks::Access kind, const void* target, std::function<void()> stage)
      : kind_(kind), target_(target), stage_(std::move(stage)) {}
  bool fired() const { return fired_; }
  void on_access(hooks::Access kind, const void* address, bool after) noexcept override {
    if (fired_ || after || kind != kind_ || address != target_) return;
    fired_ = true;  // before the stage: its own accesses come back here
    stage_();
  }
  void on_point(std::string_view) noexcept override {}
  std::uint64_t now_ns() noexcept override {
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::uint32_t pid() noexcept override { return pid_; }
  bool alive(std::uint32_t) noexcept override { return true; }
  void sleep(std::chrono::nanoseconds d) noexcept override { std::this_thread::sleep_for(d); }
  hooks::WaitResult futex_wait(std::string_view, const void*, std::uint32_t,
                               std::optional<std::chrono::nanoseconds>) noexcept override {
    return hooks::WaitResult::TimedOut;
  }
  int futex_wake(std::string_view, std::uint32_t) noexcept override { return 0; }

 private:
  hooks::Access kind_;
  const void* target_;
  std::function<void()> stage_;
  std::uint32_t pid_ = platform::current_pid();  // asked before the interposer is installed
  bool fired_ = false;
};

TEST(GenerationWrap, AWriterStalledForTwoToThe24LapsGivesTheSlotBackAndIsNotSent) {
  auto ring = RingBuffer::create_owned(1, 64);
  ASSERT_TRUE(ring.ok());
  RingHeader& hdr = header_of(*ring);
  SlotHeader& slot = ring->slot_header(0);
  constexpr std::uint64_t kLaps = std::uint64_t{1} << kGenerationBits;
  // Just before the claim CAS of position 0: the consumer reclaimed it
  // (Empty(1), tail 1) and the ring then went round 2^24 - 1 more times,
  // so the word is Empty of lap 2^24, which the word stores as lap 0.
  StageBefore stall(hooks::Access::Cas, &slot.word, [&] {
    hdr.tail.store(kLaps);
    hdr.head.store(kLaps);
    slot.word.store(slot_word(SlotState::Empty, 0, generation_of(kLaps, 1)));
  });
  hooks::set_interposer(&stall);
  auto claimed = ring->claim();
  hooks::set_interposer(nullptr);
  ASSERT_TRUE(stall.fired());
  ASSERT_FALSE(claimed.ok()) << "claimed position " << claimed->position << " whose tail had passed it";
  EXPECT_EQ(claimed.code(), ErrorCode::InvalidState);
  EXPECT_NE(claimed.error().detail.find("reclaimed"), std::string::npos) << claimed.error().message();
  // The slot is as the stalled writer found it: the writer of lap 2^24 gets it.
  EXPECT_EQ(load_word(slot), slot_word(SlotState::Empty, 0, 0));
  const std::byte msg[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  auto id = ring->write_slot(msg);
  ASSERT_TRUE(id.ok()) << id.error().message();
  EXPECT_EQ(id->position, kLaps);
  std::byte out[64];
  auto got = ring->read_slot(out);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->sequence, kLaps);  // T-SEQ: its position
}

}  // namespace
}  // namespace memlink::shm
