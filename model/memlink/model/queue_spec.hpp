// SPEC.md's queue semantics over message ids, with the interface of
// Porcupine's models (init, step, equal, describe): what a checker of a
// concurrent history consults to decide whether an operation's outcome is
// allowed in a state. The linearizability search (conformance/
// linearizability.cpp) runs it over every order real time allows; the
// exploration check reaches it through that search.
//
// The state, per priority, is the messages queued in the ring, oldest
// first. The rules are rules.hpp's: a bounded FIFO per priority
// (R-CAPACITY, R-FIFO), a read takes from the most urgent readable ring
// (R-ORDER), and a message whose write had not returned when a read began
// may not be visible to it yet (R-VISIBLE). A *ghost* is a write of unknown
// effect (its writer died, or was told its stalled position was reclaimed):
// it may hold a position, during which its ring looks empty to reads and it
// takes capacity, until recovery reclaims it at the ring's oldest position.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>

#include "memlink/shm/priority.hpp"

namespace memlink::model {

struct QueueOp {
  enum class Kind : std::uint8_t { Write, Read };
  Kind kind = Kind::Write;
  shm::Priority priority = shm::Priority::Low;  // write: its ring; read: the ring it returned from
  std::uint64_t id = 0;                         // write: the message; read: the message delivered
  bool ok = false;                              // write: acknowledged (else Full); read: delivered (else Empty)
  bool ghost = false;                           // a write of unknown effect
};

class QueueSpec {
 public:
  // A queued message: the id of the write that queued it (the checker's
  // handle on it, e.g. its index in the history) and whether it is a ghost.
  struct Entry {
    std::size_t write = 0;
    std::uint64_t id = 0;
    bool ghost = false;
    friend bool operator==(const Entry&, const Entry&) = default;
  };
  struct State {
    std::array<std::deque<Entry>, shm::kPriorityCount> queued;
    friend bool operator==(const State&, const State&) = default;
  };

  explicit QueueSpec(const std::array<std::uint32_t, shm::kPriorityCount>& capacity) : capacity_(capacity) {}

  State init() const { return {}; }
  // Applies `op` (the checker's handle on it: `self`) to `s` if the spec
  // allows its outcome there; false (and `s` unchanged) if not. A ghost is
  // applied as "took a position"; "took none" is the checker's other branch.
  // `may_be_invisible(write)` says whether a queued write may not yet be
  // visible to this read (R-VISIBLE: it had not returned when the read began).
  template <class MayBeInvisible>
  bool step(State& s, const QueueOp& op, std::size_t self, MayBeInvisible&& may_be_invisible) const;
  // Recovery reclaims the ghost at the oldest position of ring p, if there is one.
  bool reclaim_ghost(State& s, shm::Priority p) const;
  bool equal(const State& a, const State& b) const { return a == b; }
  std::string describe(const State& s) const;
  static std::string describe(const QueueOp& op);

 private:
  bool write(State& s, const QueueOp& op, std::size_t self) const;
  std::array<std::uint32_t, shm::kPriorityCount> capacity_;
};

}  // namespace memlink::model

#include "memlink/model/rules.hpp"

namespace memlink::model {

template <class MayBeInvisible>
bool QueueSpec::step(State& s, const QueueOp& op, std::size_t self, MayBeInvisible&& may_be_invisible) const {
  if (op.kind == QueueOp::Kind::Write) return write(s, op, self);
  // Ring p looks readable to this read when its oldest message is there,
  // not a ghost (whose held position makes the ring look empty), and
  // visible to it.
  auto readable = [&](shm::Priority p) {
    const auto& q = s.queued[std::size_t(p)];
    return !q.empty() && !q.front().ghost && !may_be_invisible(q.front().write);
  };
  if (!op.ok) return !rules::ring_to_read(readable).has_value();  // Empty: nothing readable anywhere
  auto& q = s.queued[std::size_t(op.priority)];
  if (q.empty() || q.front().ghost || q.front().id != op.id) return false;  // R-FIFO
  if (!rules::order_allows(op.priority, readable)) return false;            // R-ORDER
  q.pop_front();
  return true;
}

}  // namespace memlink::model
