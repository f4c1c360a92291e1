// Runs the conformance suite, as a library, against adapters of this
// project: one that is the reference under another name (must conform), and
// one that loses every High message (must fail, naming a clause).
#include <cstdio>
#include <memory>
#include <string>

#include "memlink/conformance/adapter.hpp"
#include "memlink/conformance/reference_adapter.hpp"
#include "memlink/conformance/report.hpp"
#include "memlink/conformance/suite.hpp"

using namespace memlink;
using namespace memlink::conformance;

namespace {

class MyTransport : public ReferenceAdapter {
 public:
  std::string name() const override { return "my-transport"; }
};

// Acknowledges High writes and drops them: what a transport with a bug in
// one priority ring looks like from outside.
class MyBrokenTransport : public ReferenceAdapter {
 public:
  std::string name() const override { return "my-broken-transport"; }
  shm::Result<std::uint64_t> write(Direction d, Priority p, std::span<const std::byte> data) override {
    if (p == Priority::High) return 0;
    return ReferenceAdapter::write(d, p, data);
  }
};

// The adapter-scope checks of the suite on `adapter`; the number that failed.
int run_suite_on(const std::string& adapter) {
  Params params;
  params.adapter = adapter;
  params.depth = Depth::Quick;
  params.only = "stateful";
  int failed = 0, ran = 0;
  for (const CheckDef& def : all_checks()) {
    if (params.only != def.name || !check_reaches(def, params)) continue;
    const CheckResult r = run_check(def, params);
    ++ran;
    std::printf("%s on %s: %s", def.name, adapter.c_str(), r.failure ? "FAIL" : "pass");
    if (r.failure) std::printf(" (clause %s)", std::string(r.failure->clause.name()).c_str());
    std::printf(", %d cases\n", r.cases);
    failed += r.failure.has_value();
  }
  return ran == 0 ? -1 : failed;
}

}  // namespace

int main() {
  if (!register_adapter("my-transport", [] { return std::make_unique<MyTransport>(); }) ||
      !register_adapter("my-broken-transport", [] { return std::make_unique<MyBrokenTransport>(); })) {
    std::fprintf(stderr, "register_adapter refused a new name\n");
    return 1;
  }
  if (register_adapter("reference", [] { return std::make_unique<MyTransport>(); })) {
    std::fprintf(stderr, "register_adapter took the reference's name\n");
    return 1;
  }
  const int good = run_suite_on("my-transport");
  const int broken = run_suite_on("my-broken-transport");
  std::printf("my-transport: %d failed; my-broken-transport: %d failed\n", good, broken);
  return good == 0 && broken == 1 ? 0 : 1;
}
