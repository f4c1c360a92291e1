#include "compare.hpp"

#include <rapidcheck.h>

#include "memlink/conformance/suite.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {
namespace {

std::string describe(const std::optional<shm::ErrorCode>& e) {
  return e ? std::string(shm::to_string(*e)) : std::string("Ok");
}

std::string ring_name(std::size_t d, std::size_t p) {
  return std::string(shm::to_string(static_cast<Direction>(d))) + "/" +
         std::string(shm::to_string(static_cast<Priority>(p)));
}

[[noreturn]] void fail(ClauseId clause, const std::string& what) { fail_case(clause, what); }

// Compares one field; records the clause only if `seen`: a value the
// behaviour in question made (a head that moved, a count above zero), not a
// field still at its initial value.
void expect_equal(const Params& params, ClauseId clause, const std::string& field, std::uint64_t want,
                  std::uint64_t got, bool seen = true) {
  if (seen) params.record(clause);
  if (want != got)
    fail(clause, field + ": the spec requires " + std::to_string(want) + ", the implementation has " +
                     std::to_string(got));
}

}  // namespace

// The error half of every got_from(); the value half is `fill`.
template <class R, class Fill>
Got got_from_result(const R& r, Fill fill) {
  Got g;
  if (!r) {
    g.error = r.code();
    g.detail = r.error().text();
  } else {
    fill(g);
  }
  return g;
}

Got got_from(const shm::Status& s) {
  return got_from_result(s, [](Got&) {});
}

Got got_from(const shm::Result<std::uint64_t>& r) {
  return got_from_result(r, [&](Got& g) { g.sequence = r.value(); });
}

Got got_from(const shm::Result<model::Message>& r) {
  return got_from_result(r, [&](Got& g) { g.message = r.value(); });
}

Got got_from(const shm::Result<PeekInfo>& r) {
  return got_from_result(r, [&](Got& g) {
    g.message = model::Message{r->priority, r->sequence, {}};
    g.length = r->length;
  });
}

namespace {
thread_local bool g_compare_sequences = true;
}  // namespace

void compare_sequences(bool on) { g_compare_sequences = on; }

void compare_outcome(const std::string& operation, const model::Outcome& want, const Got& got) {
  // (The clauses this exercised are the caller's to record: evidence.hpp.)
  if (got.error) {  // E-CODES: an error a person can act on says what failed
    if (got.detail.empty())
      fail(ClauseId::E_CODES, operation + ": returned " + describe(got.error) + " with no detail saying what failed");
  }
  if (want.error != got.error) {
    // A ring refused as full when it was not, or not refused when it was:
    // the clause about when a ring refuses, whatever the operation was for.
    // Likewise a payload refused as too large when it fits, or taken when it
    // does not: the clause about sizes (a writer stopped after its claim
    // that is refused a payload of exactly the slot size broke T-TOO-LARGE,
    // not the slot's transitions).
    const bool capacity = want.error == shm::ErrorCode::Full || got.error == shm::ErrorCode::Full ||
                          (want.clause == ClauseId::T_BLOCKING && got.error == shm::ErrorCode::Timeout);
    const bool size = want.error == shm::ErrorCode::MessageTooLarge || got.error == shm::ErrorCode::MessageTooLarge;
    const ClauseId clause = capacity ? ClauseId::R_CAPACITY : size ? ClauseId::T_TOO_LARGE : want.clause;
    fail(clause, operation + ": the spec requires " + describe(want.error) + ", the implementation returned " +
                     describe(got.error) + (got.detail.empty() ? "" : " (" + got.detail + ")"));
  }
  if (!want.ok()) return;
  if (want.message) {
    if (!got.message) fail(want.clause, operation + ": no message returned");
    const model::Message& w = *want.message;
    const model::Message& g = *got.message;
    if (w.priority != g.priority)
      fail(ClauseId::R_ORDER, operation + ": the spec requires the " + std::string(shm::to_string(w.priority)) +
                                  " message (sequence " + std::to_string(w.sequence) +
                                  "), the implementation returned a " + std::string(shm::to_string(g.priority)) +
                                  " one (sequence " + std::to_string(g.sequence) + ")");
    if (g_compare_sequences && w.sequence != g.sequence)
      fail(ClauseId::R_FIFO, operation + ": the spec requires sequence " + std::to_string(w.sequence) +
                                 ", the implementation returned " + std::to_string(g.sequence));
    if (want.clause == ClauseId::R_PEEK) {
      if (want.length != got.length)
        fail(ClauseId::R_PEEK, operation + ": length " + std::to_string(got.length) + ", the spec requires " +
                                   std::to_string(want.length));
    } else {
      // Delivered bytes must be the bytes written; a difference is a corrupt
      // slot delivered (V-SLOT). Not counted as exercising V-SLOT: that takes
      // a hostile peer (the CorruptOldest command, the hostile-reads check).
      if (w.payload != g.payload)
        fail(ClauseId::V_SLOT, operation + ": delivered " + std::to_string(g.payload.size()) +
                                   " bytes that differ from the " + std::to_string(w.payload.size()) +
                                   " bytes written (a corrupt slot was delivered)");
    }
  } else if (g_compare_sequences && (want.clause == ClauseId::S_PUBLISH || want.clause == ClauseId::S_TRANSITIONS)) {
    // (T-SEQ is recorded where a ring's second number was compared: evidence.cpp.)
    if (want.sequence != got.sequence)
      fail(ClauseId::T_SEQ, operation + ": sequence number: the spec requires " + std::to_string(want.sequence) +
                                ", the implementation has " + std::to_string(got.sequence));
  }
}

void compare_geometry(const Params& params, const model::View& want, const model::View& got) {
  for (std::size_t d = 0; d < shm::kDirectionCount; ++d)
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) {
      params.record(ClauseId::G_FIT);
      expect_equal(params, ClauseId::G_DIST, "ring " + ring_name(d, p) + " capacity", want.rings[d][p].capacity,
                   got.rings[d][p].capacity);
    }
}

void compare_views(const Params& params, const model::View& want, const model::View& got) {
  compare_geometry(params, want, got);
  for (std::size_t d = 0; d < shm::kDirectionCount; ++d) {
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) {
      const model::RingView& w = want.rings[d][p];
      const model::RingView& g = got.rings[d][p];
      const std::string name = "ring " + ring_name(d, p);
      // A head behind the spec's: writes were acknowledged that never
      // reached the ring (S-PUBLISH), whatever else differs.
      if (g.head < w.head && g.head >= g.tail)
        fail(ClauseId::S_PUBLISH, name + ": " + std::to_string(w.head - g.head) + " acknowledged write" +
                                      (w.head - g.head == 1 ? " is" : "s are") + " not in the ring (its head is " +
                                      std::to_string(g.head) + ", the spec requires " + std::to_string(w.head) +
                                      "): acknowledged writes that can never be delivered to the other process");
      // Evidence only where the ring moved (an aged ring starts far from 0).
      expect_equal(params, ClauseId::R_CLAIM, name + " head", w.head, g.head, w.head != w.first);
      expect_equal(params, ClauseId::R_RELEASE, name + " tail", w.tail, g.tail, w.tail != w.first);
      bool any_held = false;
      for (std::size_t i = 0; i < w.slots.size() && i < g.slots.size(); ++i) {
        any_held = any_held || w.slots[i] != model::SlotState::Empty;
        if (w.slots[i] != g.slots[i])
          fail(ClauseId::S_TRANSITIONS, name + " slot " + std::to_string(i) + ": the spec requires " +
                                            std::string(shm::to_string(w.slots[i])) + ", the implementation has " +
                                            std::string(shm::to_string(g.slots[i])));
      }
      if (any_held) params.record(ClauseId::S_TRANSITIONS);
      expect_equal(params, ClauseId::V_SLOT, name + " corrupt_skipped", w.corrupt_skipped, g.corrupt_skipped,
                   w.corrupt_skipped > 0);
      expect_equal(params, ClauseId::K_WRITING, name + " reclaimed", w.reclaimed, g.reclaimed, w.reclaimed > 0);
    }
  }
  expect_equal(params, ClauseId::C_BACKPRESSURE, "backpressure", want.backpressure, got.backpressure,
               want.backpressure > 0);
  expect_equal(params, ClauseId::T_ENDPOINTS, "client_count", want.client_count, got.client_count,
               want.client_count > 0);
  expect_equal(params, ClauseId::T_COUNTERS, "client_head", want.client_head, got.client_head, want.client_head > 0);
  expect_equal(params, ClauseId::T_COUNTERS, "daemon_tail", want.daemon_tail, got.daemon_tail, want.daemon_tail > 0);
  expect_equal(params, ClauseId::T_SHUTDOWN, "flags.SHUTDOWN", want.shutdown, got.shutdown, want.shutdown);
}

}  // namespace memlink::conformance
