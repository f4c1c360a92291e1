// Deliberately broken recoveries, compiled into the testing library only
// (MEMLINK_TESTING_HOOKS), for the proofs that the checks catch them: the
// chaos checker (memlink-chaos --broken-recovery, ctest chaos-catches-*),
// the recovery process tests (recovery-tests-catch-broken-recovery) and the
// suite's recovery check through the reference driver
// (driver-recovery-catches-no-client-reaping). Chosen by the environment
// variable MEMLINK_BROKEN_RECOVERY; the shipped library has none of this,
// and recovery.cpp calls it only inside #if defined(MEMLINK_TESTING_HOOKS).
#pragma once

#include "memlink/shm/buffer.hpp"
#include "memlink/shm/slot.hpp"

namespace memlink::shm {

struct RecoveryReport;

namespace broken {

enum class Recovery : std::uint8_t {
  None,
  DropReading,      // a half-read message is treated as consumed (lost)
  DeliverWriting,   // a message its writer never finished is published
  NoClientReaping,  // dead clients are never counted out (the crate's behaviour)
};

// MEMLINK_BROKEN_RECOVERY=drop-reading|deliver-writing|no-client-reaping,
// read once; None when unset or unknown.
Recovery chosen();

// Tail recovery's step for the slot at v.tail in `state`, broken as chosen():
// true if it handled the slot (recovery goes on to the next step as if it
// had moved it when `moved` is set), false to leave it to the correct code.
// `stale`: the slot is claimed and its holder is dead (K-STALE).
bool recover_tail(RingBuffer& ring, const TailView& v, SlotState state, bool stale, RecoveryReport& report,
                  bool& moved);

}  // namespace broken
}  // namespace memlink::shm
