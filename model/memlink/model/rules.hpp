// SPEC.md's delivery rules, stated once: the model applies them step by
// step (model.cpp), the linearizability search over a concurrent history
// (queue_spec.hpp), and the chaos checker over a crash-ridden one
// (chaos/history.cpp). What differs between those is only what "readable"
// means for what each can see.
#pragma once

#include <cstdint>
#include <optional>

#include "memlink/shm/priority.hpp"

namespace memlink::model::rules {

// R-ORDER: a read takes from the most urgent ring whose oldest message is
// readable (R-VISIBLE: a message is readable once it is Ready, not when its
// position was claimed). `readable(p)` answers for ring p.
template <class Readable>
std::optional<shm::Priority> ring_to_read(Readable&& readable) {
  for (shm::Priority p : shm::kAllPriorities)
    if (readable(p)) return p;
  return std::nullopt;
}

// R-ORDER, judged after the fact: a read that took from ring `taken` was
// right only if no more urgent ring was readable when it chose.
template <class Readable>
bool order_allows(shm::Priority taken, Readable&& readable) {
  for (shm::Priority p : shm::kAllPriorities) {
    if (p == taken) return true;
    if (readable(p)) return false;
  }
  return true;
}

// R-FIFO: within a ring (and for one writer, T-SEQ), a message delivered
// after another was written after it.
inline bool fifo_allows(std::uint64_t delivered_before, std::uint64_t delivered_after) {
  return delivered_after > delivered_before;
}

// R-CAPACITY: a ring holding `held` of `capacity` messages refuses a write
// exactly when it is full.
inline bool full(std::uint64_t held, std::uint64_t capacity) { return held >= capacity; }

}  // namespace memlink::model::rules
