#include "rc_runner.hpp"

#include <cctype>
#include <iterator>
#include <map>

namespace memlink::conformance {
namespace {
std::map<std::string, rc::detail::Reproduce>& reproduce_map() {
  static std::map<std::string, rc::detail::Reproduce> m;
  return m;
}
}  // namespace

std::string encode_reproduce(const rc::detail::Reproduce& r) {
  std::vector<std::uint8_t> bytes;
  rc::detail::serialize(r, std::back_inserter(bytes));
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (std::uint8_t b : bytes) {
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

std::optional<rc::detail::Reproduce> decode_reproduce(const std::string& hex) {
  // A replay string is hex digits in pairs; anything else is a usage error,
  // not an exception (stoul threw on "zz" and read "1z" as 1).
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.empty() || hex.size() % 2 != 0) return std::nullopt;
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  rc::detail::Reproduce r;
  try {
    rc::detail::deserialize(bytes.begin(), bytes.end(), r);
  } catch (...) {
    return std::nullopt;
  }
  return r;
}

void set_reproduce(const std::string& check, const std::string& hex) {
  if (auto r = decode_reproduce(hex)) reproduce_map()[check] = *r;
}

std::optional<rc::detail::Reproduce> reproduce_for(const std::string& check) {
  auto it = reproduce_map().find(check);
  if (it == reproduce_map().end()) return std::nullopt;
  return it->second;
}

std::uint64_t check_seed(const Params& params, const std::string& check) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a of the check name, mixed with the seed
  for (char c : check) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return h ^ params.seed;
}

int shrink_budget(const Params& params) { return depth_budget(params, 150, 400, 2000); }

const char* depth_name(Depth d) { return d == Depth::Quick ? "quick" : d == Depth::Default ? "default" : "deep"; }

namespace {
thread_local std::optional<Violation> t_last_violation;
}  // namespace

void fail_case(Violation v) {
  const std::string text = v.describe();
  t_last_violation = std::move(v);
  throw rc::detail::CaseResult(rc::detail::CaseResult::Type::Failure, text);
}

void fail_case_by_driver(const driver::DriverFailure& e) { fail_case(Violation{e.rule, e.text()}); }

void fail_case_by_type_error(const nlohmann::json::exception& e) {
  fail_case(Violation{spec::DriverRule::D_FRAME, driver::type_error_text(e)});
}

std::optional<Violation> take_last_violation() {
  auto v = std::move(t_last_violation);
  t_last_violation.reset();
  return v;
}

void clear_last_violation() { t_last_violation.reset(); }

void fill_result(CheckResult& result, const RcOutcome& rc, const Params& params) {
  result.cases = rc.cases;
  if (rc.replayed_passes)
    result.notes = "the replayed case (--reproduce) passes on this build: the failure it recorded is gone";
  if (rc.passed) return;
  Failure f;
  if (rc.violation) {
    f.clause = rc.violation->clause;
    f.description = rc.violation->describe();
  } else {
    f.description = rc.description;
  }
  f.counterexample = rc.counterexample;
  if (rc.shrink_budget_spent)
    f.counterexample.push_back("(shrinking stopped after its budget of " + std::to_string(shrink_budget(params)) +
                               " tries: a smaller counterexample may exist; --depth deep shrinks further)");
  f.replay = "scripts/conformance " + (params.driver.empty() ? "--adapter " + params.adapter : "--driver '" + params.driver + "'") + " --seed " + std::to_string(params.seed) +
             " --depth " + depth_name(params.depth) + " --only " + result.name +
             (rc.reproduce.empty() ? "" : " --reproduce " + rc.reproduce);
  result.failure = std::move(f);
}

}  // namespace memlink::conformance
