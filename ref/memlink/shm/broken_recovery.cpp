#include "memlink/shm/broken_recovery.hpp"

#if defined(MEMLINK_TESTING_HOOKS)

#include <cstdlib>
#include <cstring>

#include "memlink/shm/recovery.hpp"

namespace memlink::shm::broken {

Recovery chosen() {
  static const Recovery r = [] {
    const char* e = std::getenv("MEMLINK_BROKEN_RECOVERY");
    if (e == nullptr) return Recovery::None;
    if (std::strcmp(e, "drop-reading") == 0) return Recovery::DropReading;
    if (std::strcmp(e, "deliver-writing") == 0) return Recovery::DeliverWriting;
    if (std::strcmp(e, "no-client-reaping") == 0) return Recovery::NoClientReaping;
    return Recovery::None;
  }();
  return r;
}

bool recover_tail(RingBuffer& ring, const TailView& v, SlotState state, bool stale, RecoveryReport& report,
                  bool& moved) {
  if (!stale) return false;
  SlotHeader& slot = ring.slot_header(static_cast<std::uint32_t>(v.tail % ring.capacity()));
  if (state == SlotState::Writing && chosen() == Recovery::DeliverWriting) {
    // Publishes a message its writer never finished.
    transition_slot(slot, SlotState::Writing, SlotState::Ready);
    moved = false;
    return true;
  }
  if (state == SlotState::Reading && chosen() == Recovery::DropReading) {
    // Treats a half-read message as consumed.
    moved = transition_slot(slot, SlotState::Reading, SlotState::Done) && ring.release_done(v.tail, load_word(slot));
    report.released_done += moved;
    return true;
  }
  return false;
}

}  // namespace memlink::shm::broken

#endif  // MEMLINK_TESTING_HOOKS
