#include "memlink/conformance/verdict.hpp"

namespace memlink::conformance {

std::string_view Citation::name() const {
  if (const auto* c = std::get_if<ClauseId>(&id_)) return spec::name(*c);
  if (const auto* r = std::get_if<DriverRule>(&id_)) return spec::name(*r);
  return "(none named)";
}

std::string Violation::describe() const { return "[" + std::string(clause.name()) + "] " + text; }

void ClauseCounter::record(ClauseId c, std::uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  counts_[static_cast<std::size_t>(c)] += n;
}

std::uint64_t ClauseCounter::count(ClauseId c) const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_[static_cast<std::size_t>(c)];
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::Pass: return "PASS";
    case Verdict::Fail: return "FAIL";
    case Verdict::NotApplicable: return "NOT APPLICABLE";
    case Verdict::NotCovered: return "NOT COVERED";
  }
  return "?";
}

}  // namespace memlink::conformance
