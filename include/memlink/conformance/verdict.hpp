// The vocabulary of verdicts: clause ids (generated from SPEC.md and
// DRIVER.md at build time, so a misspelt id does not compile), what a
// failure cites, a violation (a clause and what happened), the counter of
// the clauses a check saw exercised, and the verdict per clause.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>

#include "memlink/spec/clause_ids.hpp"

namespace memlink::spec {
inline std::ostream& operator<<(std::ostream& os, ClauseId id) { return os << name(id); }
inline std::ostream& operator<<(std::ostream& os, DriverRule r) { return os << name(r); }
}  // namespace memlink::spec

namespace memlink::conformance {

using spec::ClauseId;
using spec::DriverRule;

// What a failure cites: a clause of SPEC.md, or a rule of the driver
// protocol (DRIVER.md: a driver that hung, printed garbage, exited).
class Citation {
 public:
  Citation() = default;
  Citation(ClauseId c) : id_(c) {}    // NOLINT(google-explicit-constructor): a clause is a citation
  Citation(DriverRule r) : id_(r) {}  // NOLINT(google-explicit-constructor)
  std::string_view name() const;
  bool is(ClauseId c) const { return std::holds_alternative<ClauseId>(id_) && std::get<ClauseId>(id_) == c; }
  const ClauseId* clause() const { return std::get_if<ClauseId>(&id_); }
  friend bool operator==(const Citation&, const Citation&) = default;

 private:
  std::variant<std::monostate, ClauseId, DriverRule> id_;
};

inline std::ostream& operator<<(std::ostream& os, const Citation& c) { return os << c.name(); }

// A broken promise: the clause it breaks and what happened, for people.
struct Violation {
  Citation clause;
  std::string text;
  // "[R-ORDER] read c2d: ...", as reports print it.
  std::string describe() const;
};

// The clauses one check saw exercised, and how often (thread-safe: a
// check's threads may record). Each check gets its own from the runner.
class ClauseCounter {
 public:
  void record(ClauseId c, std::uint64_t n = 1);
  std::uint64_t count(ClauseId c) const;

 private:
  mutable std::mutex mu_;
  std::array<std::uint64_t, spec::kClauseIdCount> counts_{};
};

// What the report says of a clause.
enum class Verdict { Pass, Fail, NotApplicable, NotCovered };
std::string_view to_string(Verdict v);  // "PASS", "FAIL", "NOT APPLICABLE", "NOT COVERED"
inline std::ostream& operator<<(std::ostream& os, Verdict v) { return os << to_string(v); }

}  // namespace memlink::conformance
