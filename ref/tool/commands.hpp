// The memlink-shm subcommands. Each returns the process exit status:
// 0 success, 1 the run failed its check (mismatch, lost answer), 2 an error
// (bad segment, bad argument, OS error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "memlink/shm/transport.hpp"

namespace memlink::shm::tool {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;
inline constexpr int kExitError = 2;
inline constexpr int kExitUsage = 2;  // a nonsense flag or value (README: exit 2 on usage errors)

struct DaemonArgs {
  std::string path;
  std::size_t size = DEFAULT_SEGMENT_SIZE;
  std::uint16_t version = 1;
  WaitStrategy wait = WaitStrategy::Adaptive;
  std::uint32_t slot_size = MAX_SLOT_SIZE;
  bool replace = false;
  bool take_over = true;
  std::uint32_t heartbeat_ms = 100;
  std::uint32_t heartbeat_timeout_ms = 1000;
  bool quiet = false;
  bool allow_foreign_owner = false;  // SPEC M-OWNER
};

struct ClientArgs {
  std::string path;
  std::uint64_t count = 1000;
  std::size_t payload = 64;
  std::uint16_t version = 1;
  WaitStrategy wait = WaitStrategy::Adaptive;
  double timeout_s = 5.0;
  std::string json_path;  // "" = none, "-" = stdout
  bool allow_foreign_owner = false;  // SPEC M-OWNER
};

int run_daemon(const DaemonArgs& args);
int run_client(const ClientArgs& args);
int run_inspect(const std::string& path, bool json);
// Another user's segment only with `allow_foreign_owner` (SPEC M-OWNER).
int run_cleanup(const std::string& path, bool allow_foreign_owner);

}  // namespace memlink::shm::tool
