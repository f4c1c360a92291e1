// Where a check's driver processes come from. Every cross-process check is
// written once, against the driver protocol (DRIVER.md), and takes its
// processes from a Launcher:
//   - a command's launcher (--driver CMD) starts CMD, once per process;
//   - the reference's in-process launcher (--adapter reference) serves the
//     reference driver on threads of the suite's own process, or in forked
//     children where a check kills or stops a process.
// Both keep the processes a check hands back and, if the driver claims
// `reset` (D-RESET), hand them out again for the next case: a case costs
// its requests, not process starts.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "driver_process.hpp"

namespace memlink::conformance {

struct Params;

namespace driver {

// Where a process must run: anywhere (a thread of the suite will do), or in
// a process of its own, because the check will kill it, stop it or arm a
// crash or pause point in it.
enum class Placement { Any, OwnProcess };

class Launcher {
 public:
  virtual ~Launcher();
  // A process in `role`, greeted (hello answered): a fresh one, or one a
  // check handed back and that `reset` made as new.
  std::unique_ptr<DriverProcess> start(const std::string& role, Placement placement = Placement::Any,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Hands a process back: reset and kept for a later start() if the driver
  // claims `reset` and the process answers it; else ended.
  void give_back(std::unique_ptr<DriverProcess> p);
  // Whether start() can place a process so (in process under
  // ThreadSanitizer a process of its own cannot be forked).
  virtual bool can_place(Placement placement) const = 0;
  // The driver's hello (its capabilities and limits), read once.
  const Hello& hello();
  // For messages: the command, or "the in-process reference driver".
  virtual std::string name() const = 0;
  // For replay lines: "--driver 'CMD'" or "--adapter reference".
  virtual std::string target_args() const = 0;
  // How many processes it started, and how many starts a reset saved.
  int started() const { return started_; }
  int reused() const { return reused_; }

 protected:
  virtual std::unique_ptr<DriverProcess> launch(const std::string& role, Placement placement,
                                                std::chrono::milliseconds timeout) = 0;

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<DriverProcess>> idle_any_, idle_own_;
  std::unique_ptr<Hello> hello_;
  int started_ = 0, reused_ = 0;
};

std::unique_ptr<Launcher> command_launcher(const std::string& command);
// The reference driver in process; MEMLINK_DRIVER_FAULT breaks it as it
// breaks memlink-shm-driver (reference_driver.hpp).
std::unique_ptr<Launcher> reference_launcher();

}  // namespace driver

// The launcher a check should use: over params.driver if set, the reference
// in process for adapter "reference", else nullptr (the check does not
// reach that adapter). The runner (run_check) sets params.launcher for a
// check's duration; this returns it, or makes one.
std::shared_ptr<driver::Launcher> launcher_for(const Params& params);

}  // namespace memlink::conformance
