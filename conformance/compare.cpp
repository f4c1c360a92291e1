#include "compare.hpp"

#include <rapidcheck.h>

#include "suite.hpp"

namespace memlink::conformance {
namespace {

std::string describe(const std::optional<shm::ErrorCode>& e) {
  return e ? std::string(shm::to_string(*e)) : std::string("Ok");
}

std::string ring_name(std::size_t d, std::size_t p) {
  return std::string(shm::to_string(static_cast<Direction>(d))) + "/" +
         std::string(shm::to_string(static_cast<Priority>(p)));
}

[[noreturn]] void fail(const std::string& clause, const std::string& what) {
  RC_FAIL("[" + clause + "] " + what);
}

void expect_equal(const std::string& clause, const std::string& field, std::uint64_t want, std::uint64_t got) {
  record_clause(clause);
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
  record_clause(want.clause);
  if (got.error) {  // E-CODES: an error a person can act on says what failed
    record_clause("E-CODES");
    if (got.detail.empty())
      fail("E-CODES", operation + ": returned " + describe(got.error) + " with no detail saying what failed");
  }
  if (want.error != got.error)
    fail(want.clause, operation + ": the spec requires " + describe(want.error) + ", the implementation returned " +
                          describe(got.error) + (got.detail.empty() ? "" : " (" + got.detail + ")"));
  if (!want.ok()) return;
  if (want.message) {
    if (!got.message) fail(want.clause, operation + ": no message returned");
    const model::Message& w = *want.message;
    const model::Message& g = *got.message;
    record_clause("R-ORDER");
    if (w.priority != g.priority)
      fail("R-ORDER", operation + ": the spec requires the " + std::string(shm::to_string(w.priority)) +
                          " message (sequence " + std::to_string(w.sequence) + "), the implementation returned a " +
                          std::string(shm::to_string(g.priority)) + " one (sequence " +
                          std::to_string(g.sequence) + ")");
    record_clause("R-FIFO");
    if (g_compare_sequences && w.sequence != g.sequence)
      fail("R-FIFO", operation + ": the spec requires sequence " + std::to_string(w.sequence) +
                         ", the implementation returned " + std::to_string(g.sequence));
    if (want.clause == "R-PEEK") {
      if (want.length != got.length)
        fail("R-PEEK", operation + ": length " + std::to_string(got.length) + ", the spec requires " +
                           std::to_string(want.length));
    } else {
      // Delivered bytes must be the bytes written; a difference is a corrupt
      // slot delivered (V-SLOT). Not counted as exercising V-SLOT: that takes
      // a hostile peer (the CorruptOldest command, the hostile-reads check).
      if (w.payload != g.payload)
        fail("V-SLOT", operation + ": delivered " + std::to_string(g.payload.size()) +
                           " bytes that differ from the " + std::to_string(w.payload.size()) +
                           " bytes written (a corrupt slot was delivered)");
    }
  } else if (g_compare_sequences && (want.clause == "S-PUBLISH" || want.clause == "S-TRANSITIONS")) {
    expect_equal("T-SEQ", operation + ": sequence number", want.sequence, got.sequence);
  }
}

void compare_geometry(const model::View& want, const model::View& got) {
  for (std::size_t d = 0; d < shm::kDirectionCount; ++d)
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) {
      record_clause("G-FIT");
      expect_equal("G-DIST", "ring " + ring_name(d, p) + " capacity", want.rings[d][p].capacity,
                   got.rings[d][p].capacity);
    }
}

void compare_views(const model::View& want, const model::View& got) {
  compare_geometry(want, got);
  for (std::size_t d = 0; d < shm::kDirectionCount; ++d) {
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) {
      const model::RingView& w = want.rings[d][p];
      const model::RingView& g = got.rings[d][p];
      const std::string name = "ring " + ring_name(d, p);
      expect_equal("R-CLAIM", name + " head", w.head, g.head);
      expect_equal("R-RELEASE", name + " tail", w.tail, g.tail);
      record_clause("S-TRANSITIONS");
      for (std::size_t i = 0; i < w.slots.size() && i < g.slots.size(); ++i)
        if (w.slots[i] != g.slots[i])
          fail("S-TRANSITIONS", name + " slot " + std::to_string(i) + ": the spec requires " +
                                    std::string(shm::to_string(w.slots[i])) + ", the implementation has " +
                                    std::string(shm::to_string(g.slots[i])));
      expect_equal("V-SLOT", name + " corrupt_skipped", w.corrupt_skipped, g.corrupt_skipped);
      expect_equal("K-WRITING", name + " reclaimed", w.reclaimed, g.reclaimed);
    }
  }
  expect_equal("C-BACKPRESSURE", "backpressure", want.backpressure, got.backpressure);
  expect_equal("T-ENDPOINTS", "client_count", want.client_count, got.client_count);
  expect_equal("T-COUNTERS", "client_head", want.client_head, got.client_head);
  expect_equal("T-COUNTERS", "daemon_tail", want.daemon_tail, got.daemon_tail);
  expect_equal("T-SHUTDOWN", "flags.SHUTDOWN", want.shutdown, got.shutdown);
}

}  // namespace memlink::conformance
