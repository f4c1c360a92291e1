#include "launcher.hpp"

#include <unistd.h>

#include <filesystem>

#include "capabilities.hpp"
#include "drivers/reference/reference_driver.hpp"
#include "memlink/conformance/suite.hpp"

namespace memlink::conformance {

Gates launcher_gates() {
  return {{"one process serves case after case (else each case starts its own processes)", {"reset"}}};
}

namespace driver {

Launcher::~Launcher() = default;

std::unique_ptr<DriverProcess> Launcher::start(const std::string& role, Placement placement,
                                               std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A process of its own serves anywhere; a thread only where Any will do.
    auto* pool = placement == Placement::Any && !idle_any_.empty() ? &idle_any_ : &idle_own_;
    if (!pool->empty()) {
      auto p = std::move(pool->back());
      pool->pop_back();
      p->set_role(role);
      ++reused_;
      return p;
    }
    ++started_;
  }
  return launch(role, placement, timeout);
}

void Launcher::give_back(std::unique_ptr<DriverProcess> p) {
  if (!p || p->exited() || !p->hello().has("reset")) return;  // ended as it goes out of scope
  try {
    const Reply r = p->call({{"op", "reset"}}, std::chrono::seconds(5));
    if (!r.ok()) return;
  } catch (const DriverFailure&) {
    return;  // it failed at reset: a fresh one next time
  }
  std::lock_guard<std::mutex> lock(mu_);
  (p->killable() ? idle_own_ : idle_any_).push_back(std::move(p));
}

const Hello& Launcher::hello() {
  if (!hello_) {
    auto p = start("probe", can_place(Placement::Any) ? Placement::Any : Placement::OwnProcess);
    hello_ = std::make_unique<Hello>(p->hello());
    if (hello_->has("reset")) {  // fresh: reusable as it is
      std::lock_guard<std::mutex> lock(mu_);
      (p->killable() ? idle_own_ : idle_any_).push_back(std::move(p));
    }
  }
  return *hello_;
}

namespace {

class CommandLauncher final : public Launcher {
 public:
  explicit CommandLauncher(std::string command) : command_(std::move(command)) {}
  bool can_place(Placement) const override { return true; }
  std::string name() const override { return command_; }
  std::string target_args() const override { return "--driver '" + command_ + "'"; }

 protected:
  std::unique_ptr<DriverProcess> launch(const std::string& role, Placement,
                                        std::chrono::milliseconds timeout) override {
    return DriverProcess::start(command_, role, timeout);
  }

 private:
  std::string command_;
};

class ReferenceLauncher final : public Launcher {
 public:
  ReferenceLauncher() {
    std::string error;
    if (!reference_driver::fault_from_env(fault_, error)) throw DriverFailure("in-process reference driver: " + error);
    // A thread of the suite cannot exit or give up its SIGBUS guard alone.
    if (fault_.exit_at || fault_.no_fault_guard || fault_.hang_at)
      throw DriverFailure(
          "in-process reference driver: MEMLINK_DRIVER_FAULT exit-at, hang-at and no-fault-guard apply to "
          "memlink-shm-driver only (run --driver build/release/memlink-shm-driver)");
  }
  bool can_place(Placement p) const override { return p == Placement::Any || forking_allowed(); }
  std::string name() const override { return "the in-process reference driver"; }
  std::string target_args() const override { return "--adapter reference"; }

 protected:
  std::unique_ptr<DriverProcess> launch(const std::string& role, Placement placement,
                                        std::chrono::milliseconds timeout) override {
    const reference_driver::Fault fault = fault_;
    Server server = [fault](int in, int out) { return reference_driver::serve_lines(in, out, fault); };
    if (placement == Placement::OwnProcess)
      return DriverProcess::start_forked(server, name(), role, timeout, sibling_driver_);
    return DriverProcess::start_thread(server, name(), role, timeout);
  }

 private:
  // memlink-shm-driver beside this program (the build directory, the
  // installed bin/): a process of its own runs the same driver code freshly
  // executed (start_forked says why); without it, the forked child serves.
  static std::string sibling_driver() {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    const std::filesystem::path driver = self.parent_path() / "memlink-shm-driver";
    return ::access(driver.c_str(), X_OK) == 0 ? driver.string() : std::string();
  }

  reference_driver::Fault fault_;
  std::string sibling_driver_ = sibling_driver();
};

}  // namespace

std::unique_ptr<Launcher> command_launcher(const std::string& command) {
  return std::make_unique<CommandLauncher>(command);
}

std::unique_ptr<Launcher> reference_launcher() { return std::make_unique<ReferenceLauncher>(); }

}  // namespace driver

std::shared_ptr<driver::Launcher> launcher_for(const Params& params) {
  if (params.launcher) return params.launcher;
  if (!params.driver.empty()) return driver::command_launcher(params.driver);
  if (params.adapter == "reference") return driver::reference_launcher();
  return nullptr;
}

}  // namespace memlink::conformance
