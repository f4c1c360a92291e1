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
  if (hex.size() % 2 != 0) return std::nullopt;
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const auto v = std::stoul(hex.substr(i, 2), nullptr, 16);
    bytes.push_back(static_cast<std::uint8_t>(v));
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

std::optional<std::pair<std::size_t, std::size_t>> find_clause_tag(const std::string& text) {
  for (std::size_t open = text.find('['); open != std::string::npos; open = text.find('[', open + 1)) {
    const std::size_t close = text.find(']', open);
    if (close == std::string::npos) return std::nullopt;
    const std::string id = text.substr(open + 1, close - open - 1);
    const bool looks_like_clause = id.size() >= 3 && std::isupper(static_cast<unsigned char>(id[0])) && id[1] == '-' &&
                                   id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ-") == std::string::npos;
    if (looks_like_clause) return std::pair{open, close};
  }
  return std::nullopt;
}

void fill_result(CheckResult& result, const RcOutcome& rc, const Params& params) {
  result.cases = rc.cases;
  if (rc.replayed_passes)
    result.notes = "the replayed case (--reproduce) passes on this build: the failure it recorded is gone";
  if (rc.passed) return;
  Failure f;
  if (const auto tag = find_clause_tag(rc.description)) {
    f.clause = rc.description.substr(tag->first + 1, tag->second - tag->first - 1);
    f.description = rc.description.substr(tag->first);  // drop RapidCheck's file:line
    while (!f.description.empty() && (f.description.back() == '\n' || f.description.back() == ' '))
      f.description.pop_back();
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
