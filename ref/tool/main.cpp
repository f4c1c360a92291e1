// memlink-shm: run a daemon, a client, or inspect a segment.
#include <CLI/CLI.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "commands.hpp"

using namespace memlink::shm;

int main(int argc, char** argv) {
  CLI::App app{
      "memlink-shm: the reference shared-memory transport.\n"
      "A daemon creates a segment; clients connect and exchange messages with it on three\n"
      "priority rings per direction. PATH is a file (e.g. /dev/shm/name) or a bare name\n"
      "for POSIX shared memory.",
      "memlink-shm"};
  app.require_subcommand(1);
  memlink::cli::add_version_flag(app, "memlink-shm");

  const std::vector<std::string> strategies{"spin", "block", "adaptive"};
  std::string daemon_wait = "adaptive", client_wait = "adaptive";

  tool::DaemonArgs d;
  CLI::App* daemon = app.add_subcommand("daemon", "Create a segment at PATH and answer every request until SIGINT/SIGTERM");
  daemon->add_option("PATH", d.path, "Segment path or POSIX shm name")->required();
  daemon->add_option("--size", d.size, "Segment size in bytes")
      ->capture_default_str()
      ->check(CLI::Range(MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE));
  daemon->add_option("--protocol-version", d.version, "User protocol version clients must match")
      ->capture_default_str();
  daemon->add_option("--slot-size", d.slot_size, "Payload bytes per slot")
      ->capture_default_str()
      ->check(CLI::Range(std::uint32_t{1}, static_cast<std::uint32_t>(MAX_SLOT_SIZE)));
  daemon->add_option("--wait", daemon_wait, "Wait strategy: spin, block or adaptive")
      ->check(CLI::IsMember(strategies))
      ->capture_default_str();
  daemon->add_flag("--replace", d.replace,
                   "Remove a segment left at PATH by a dead daemon first (its messages are lost) "
                   "instead of taking it over; refused while a daemon is alive");
  bool no_takeover = false;
  daemon->add_flag("--no-takeover", no_takeover,
                   "Refuse a segment left by a dead or unresponsive daemon instead of taking it over");
  daemon->add_option("--heartbeat-ms", d.heartbeat_ms, "Heartbeat interval")->capture_default_str()->check(CLI::Range(1, 60000));
  daemon->add_option("--heartbeat-timeout-ms", d.heartbeat_timeout_ms,
                     "A daemon silent this long may be replaced")->capture_default_str()->check(CLI::Range(2, 600000));
  daemon->add_flag("--quiet", d.quiet, "Print only errors");
  daemon->add_flag("--allow-foreign-owner", d.allow_foreign_owner,
                   "Take over (or, with --replace, remove) a segment another user owns (that user can rewrite or "
                   "truncate it at any time)");

  tool::ClientArgs c;
  CLI::App* client = app.add_subcommand("client", "Connect, send requests across the priorities, check every answer, print round-trip times");
  client->add_option("PATH", c.path, "Segment path or POSIX shm name")->required();
  // Bounded: the client keeps a round-trip time per request (a count of
  // 2^64 - 1 used to abort with length_error, 1e11 with bad_alloc).
  client->add_option("--count", c.count, "Number of requests (1 to 100,000,000)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
  client->add_option("--payload", c.payload, "Payload bytes per request")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, MAX_SLOT_SIZE));
  client->add_option("--protocol-version", c.version, "User protocol version the daemon must speak")
      ->capture_default_str();
  client->add_option("--wait", client_wait, "Wait strategy: spin, block or adaptive")
      ->check(CLI::IsMember(strategies))
      ->capture_default_str();
  // inf, nan, 1e300 or a negative number used to be accepted and time out at
  // once (an undefined double-to-integer conversion).
  client->add_option("--timeout", c.timeout_s, "Seconds to wait for each answer (0.001 to 86400)")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) {
            double v = 0;
            try {
              v = std::stod(text);
            } catch (...) {
              return std::string("not a number of seconds: ") + text;
            }
            if (!std::isfinite(v) || v < 0.001 || v > 86400) return "must be a finite number of seconds from 0.001 to 86400, not " + text;
            return std::string();
          },
          "SECONDS"));
  client->add_option("--json", c.json_path, "Also write the results as JSON to FILE ('-' for stdout)");
  client->add_flag("--allow-foreign-owner", c.allow_foreign_owner,
                   "Connect to a segment another user owns (that user can rewrite or truncate it at any time)");

  std::string inspect_path;
  bool inspect_json = false;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "Print a segment's control region, geometry and per-ring state; exit 2 if it is corrupt");
  inspect->add_option("PATH", inspect_path, "Segment path or POSIX shm name")->required();
  inspect->add_flag("--json", inspect_json, "Print JSON instead of a table");

  std::string cleanup_path;
  CLI::App* cleanup = app.add_subcommand(
      "cleanup", "Remove the segment, PID file and lock file left at PATH by a dead daemon (refused while one is alive)");
  cleanup->add_option("PATH", cleanup_path, "Segment path or POSIX shm name")->required();
  bool cleanup_foreign = false;
  cleanup->add_flag("--allow-foreign-owner", cleanup_foreign, "Remove a segment another user owns");

  // Usage errors exit 2, as README says; --help and --version exit 0.
  if (const auto status = memlink::cli::parse(app, argc, argv)) return *status;
  d.take_over = !no_takeover;
  d.wait = *wait_strategy_from_string(daemon_wait);
  c.wait = *wait_strategy_from_string(client_wait);
  if (*daemon) return tool::run_daemon(d);
  if (*client) return tool::run_client(c);
  if (*inspect) return tool::run_inspect(inspect_path, inspect_json);
  if (*cleanup) return tool::run_cleanup(cleanup_path, cleanup_foreign);
  return tool::kExitError;
}
