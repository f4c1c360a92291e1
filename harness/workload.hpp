// The workload's roles: the three kinds of process the chaos runner forks
// (and the reference driver runs in its workload mode, DRIVER.md D-WORKLOAD),
// and how each records what it did (workload_log.hpp). Each body runs in a fresh child and never
// returns: it ends with _exit, SIGKILL (runner or crash point) or SIGSTOP.
#pragma once

#include <cstdint>
#include <string>

#include "memlink/shm/transport.hpp"
#include "workload_log.hpp"

namespace memlink::chaos {

namespace shm = memlink::shm;

struct ProcessConfig {
  std::string segment;
  std::size_t segment_size = 256 * 1024;
  std::uint32_t slot_size = 128;
  std::uint32_t heartbeat_ms = 20;
  std::uint32_t heartbeat_timeout_ms = 200;
  std::uint32_t claim_timeout_ms = 300;
  std::uint64_t seed = 0;
  std::uint32_t rate = 1000;  // messages per second per writer (bursts on top)
  // How old the daemon formats a new segment (SPEC C-AGE): lap-wrap puts
  // every ring's generation and the epoch just before their wraps.
  shm::SegmentAge age = shm::SegmentAge::Fresh;
};

// A crash point to arm in the child ("" for none), or with `pause` a pause
// point: the whole process stops there (SIGSTOP), or with `pause_dir` only
// the thread (it creates <pause_dir>/paused and waits for <pause_dir>/resume).
struct Arm {
  Arm() = default;
  Arm(std::string point_, long occurrence_, bool pause_ = false, std::string pause_dir_ = {})
      : point(std::move(point_)), occurrence(occurrence_), pause(pause_), pause_dir(std::move(pause_dir_)) {}
  std::string point;
  long occurrence = 0;
  bool pause = false;
  std::string pause_dir;
};

// Exit codes of the bodies.
inline constexpr int kExitClean = 0;   // SIGTERM: stopped cleanly
inline constexpr int kExitSetup = 2;   // could not start (the log says why)
inline constexpr int kExitFenced = 3;  // a daemon that noticed it was replaced

// The loops of the three bodies, on an endpoint made elsewhere (the
// reference driver's workload mode, DRIVER.md D-WORKLOAD). They return
// never: SIGTERM (after stop_on_sigterm) ends them with kExitClean.
[[noreturn]] void serve_as_daemon(shm::Daemon& d, const ProcessConfig& c, int log_fd);
[[noreturn]] void write_as_client(shm::Client& cl, const ProcessConfig& c, int log_fd, std::uint32_t writer_id);
[[noreturn]] void read_as_client(shm::Client& cl, const ProcessConfig& c, int log_fd);
void stop_on_sigterm();
// The endpoint options the bodies use (recovery timeouts, daemon timeout).
shm::EndpointOptions chaos_endpoint_options(const ProcessConfig& c);

[[noreturn]] void run_daemon(const ProcessConfig& c, int log_fd, const Arm& arm);
[[noreturn]] void run_writer(const ProcessConfig& c, int log_fd, std::uint32_t writer_id, const Arm& arm);
[[noreturn]] void run_reader(const ProcessConfig& c, int log_fd, const Arm& arm);

}  // namespace memlink::chaos
