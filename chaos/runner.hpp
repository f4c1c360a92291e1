// memlink-chaos's fault runner: forks a daemon, K writing clients and a
// reading client on one segment (or drives a transport's driver in workload
// mode), attacks them (SIGKILL at random moments and at every crash point,
// SIGSTOP past the heartbeat timeout, killed clients), starts a new daemon
// each time, and at the end checks the whole history (history.hpp).
//
// One class, its methods in one file per concern:
//   runner.cpp           the run: its loop, the watchdog, progress
//   process_control.cpp  starting, finding, killing and reaping processes
//   fault_injection.cpp  random faults, the crash walk, the pause walk, stops
//   drain.cpp            letting the rings drain; what is still pending
//   report.cpp           the figures, the verdict, text, JSON, JUnit, picture
//   cli.cpp              the command line (run_main)
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "driver_process.hpp"
#include "history.hpp"
#include "memlink/shm/transport.hpp"
#include "workload.hpp"

namespace memlink::chaos {

namespace shm = memlink::shm;

struct Options {
  double duration_s = 60;
  std::uint64_t seed = 0;
  std::uint32_t clients = 3;
  std::string json_path;
  std::string junit_path;
  std::string work_dir;
  bool crash_walk = false;
  bool keep_logs = false;
  bool quiet = false;
  double hang_timeout_s = 10;
  ProcessConfig process;
  // --driver: the transport a driver command drives (conformance/DRIVER.md),
  // in workload mode, instead of the reference forked in process.
  std::string driver;
  conformance::driver::Hello hello;
};

struct Proc {
  pid_t pid = -1;
  Role role = Role::Writer;
  std::uint32_t instance = 0;
  std::string log_path;
  Arm arm;
  bool killed_by_runner = false;
  bool stopped = false;
  bool done = false;
  int status = 0;
  std::uint64_t started_ns = 0;
  std::uint64_t ended_ns = 0;  // when the runner reaped it
  bool died_by_sigkill() const { return done && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  bool hit_crash_point() const { return died_by_sigkill() && !killed_by_runner && !arm.point.empty(); }
};

class Runner {
 public:
  explicit Runner(Options o) : o_(std::move(o)), rng_(o_.seed) {}
  bool through_driver() const { return !o_.driver.empty(); }

  int run();

 private:
  Proc& spawn(Role role, Arm arm = {});
  void start_driver(Proc& p);
  nlohmann::json endpoint_request(Role role) const;
  std::vector<std::string> driver_points(const char* prefix) const;
  std::uint64_t pending_from_logs(std::uint64_t* excused);
  bool drained_now();
  void reap();
  void kill_proc(Proc& p, const std::string& kind);
  Proc* current(Role role);
  Proc* find(Role role, std::uint32_t instance);  // nullptr if never started
  Proc& restart_daemon(Arm arm = {});
  void random_fault();
  void crash_walk();
  void pause_walk();
  bool pause_writer_at(const std::string& point);
  bool pause_daemon_at(const std::string& point);
  void hold_heartbeat_past_replacement(std::uint32_t inst, const std::string& dir);
  void stop_and_replace_daemon();
  void replace_stopped_daemon(pid_t old_pid, std::uint32_t old_instance, std::uint64_t t_stop);
  bool wait_stopped(const Proc& p, std::chrono::milliseconds limit);
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit);
  void keep_alive();
  void watchdog();
  void watch_driver_logs();
  void report_writers_stuck_in_a_write(std::uint64_t now);
  void progress(bool force);
  bool drain();
  void check_clients_reaped();
  int report();
  // report(), step by step.
  struct Figures;
  Figures gather_figures() const;
  void read_logs(Figures& f) const;
  CheckOptions check_options() const;
  void measure_recoveries(Figures& f) const;
  std::string replay_command() const;
  void print_summary(const Figures& f) const;
  void print_faults(const Figures& f) const;
  void print_verdict(const Figures& f) const;
  void print_recovery(const Figures& f) const;
  std::string draw_picture(const Figures& f) const;
  void write_json(const Figures& f) const;
  void write_junit(const Figures& f) const;
  void clean_up(bool ok);
  std::optional<shm::Client> observer_;
  // Driver mode: the processes' pipes (kept open while they run).
  std::vector<std::unique_ptr<conformance::driver::DriverProcess>> drivers_;
  std::uint64_t last_pending_check_ns_ = 0;

  Options o_;
  std::mt19937_64 rng_;
  std::vector<Proc> procs_;
  std::uint32_t next_instance_[3] = {};
  std::map<std::string, std::uint64_t> kills_;        // by kind
  std::map<std::string, std::uint64_t> crash_hits_;   // by crash point
  std::map<std::string, std::uint64_t> pause_holds_;  // by pause point
  struct Held {
    std::uint32_t writer;     // instance of a writer armed to stop at a point
    std::uint64_t resume_ns;  // when to let it go once it stopped
    bool counted;
  };
  std::vector<Held> held_;
  void resume_held(bool all);
  struct Recovery {
    std::uint64_t t_fault;      // kill, crash point death, or SIGSTOP
    std::uint32_t next_daemon;  // the first daemon instance started after it
    bool stop;                  // a stop (the takeover waits for the heartbeat timeout)
  };
  std::vector<Recovery> recoveries_;
  std::vector<std::string> runner_violations_;
  std::uint64_t start_ns_ = 0, last_progress_ns_ = 0;
  std::uint64_t watch_tail_ = 0, watch_since_ns_ = 0;
  bool driver_broken_ = false;              // a driver failed a request (the run ends, FAIL)
  std::set<std::uint32_t> stuck_reported_;  // writers reported stuck inside a write
};

// Whether a daemon has logged that it serves (its takeover completed).
bool has_served(const Proc& daemon);
// "12.3": nanoseconds as milliseconds, for reports.
std::string ms(double ns);

}  // namespace memlink::chaos
