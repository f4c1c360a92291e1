// memlink-shm-driver: the reference transport as a conformance driver
// (conformance/DRIVER.md): one process per endpoint, JSON lines on stdin and
// stdout. The driver itself is reference_driver.cpp, which the suite also
// runs in process (--adapter reference).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "driver_json.hpp"
#include "memlink/shm/version.hpp"
#include "reference_driver.hpp"
#include "workload.hpp"

namespace {

void usage() {
  std::printf(
      "memlink-shm-driver: the memlink-shm reference transport as a conformance driver.\n"
      "Speaks conformance/DRIVER.md (protocols 1 and 2) on stdin/stdout: one JSON request per line in,\n"
      "one JSON response per line out. Started by memlink-conformance --driver and memlink-chaos --driver.\n\n"
      "  --help      this text\n  --version   the version\n\n"
      "MEMLINK_DRIVER_FAULT=reorder-priorities|lose-on-kill|deliver-nothing|no-wake|no-fault-guard|\n"
      "                     min-segment:N|protocol-1|hang-at:N|garbage-at:N|exit-at:N|string-id-at:N|\n"
      "                     numeric-error-at:N|invalid-utf8-at:N|cut-utf8-at:N|long-line-at:N|stderr-flood:MiB\n"
      "breaks it on purpose (for the suite's own tests; reference_driver.hpp says what each does).\n");
}

// D-WORKLOAD: the chaos runner's process bodies on the driver's endpoint.
nlohmann::json workload(const memlink::conformance::reference_driver::WorkloadContext& ctx, const nlohmann::json& req,
                        const memlink::conformance::reference_driver::LineWriter& write_line) {
  auto fail = [](const char* code, const std::string& detail) {
    return nlohmann::json{{"ok", false}, {"error", code}, {"detail", detail}};
  };
  memlink::chaos::ProcessConfig c;
  c.segment = ctx.segment;
  c.slot_size = req.value("slot_size", ctx.slot_size);
  c.rate = req.value("rate", 1000u);
  c.seed = req.value("seed", std::uint64_t{0});
  const std::string role = req.at("role").get<std::string>();
  if ((role == "daemon") != (ctx.daemon != nullptr) || (role != "daemon" && role != "writer" && role != "reader"))
    return fail("InvalidState", "role '" + role + "' does not fit this endpoint");
  const int fd = ::open(req.at("log").get<std::string>().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail("IoError", "cannot open the log: " + std::string(std::strerror(errno)));
  memlink::chaos::stop_on_sigterm();
  write_line(nlohmann::json{{"id", req.at("id")}, {"ok", true}}.dump());
  if (role == "daemon") memlink::chaos::serve_as_daemon(*ctx.daemon, c, fd);
  if (role == "writer") memlink::chaos::write_as_client(*ctx.client, c, fd, req.value("writer", 1u));
  memlink::chaos::read_as_client(*ctx.client, c, fd);
}

}  // namespace

int main(int argc, char** argv) {
  namespace rd = memlink::conformance::reference_driver;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (a == "--version" || a == "-V") {
      std::printf("memlink-shm-driver %s (driver protocol %d)\n", MEMLINK_SHM_VERSION,
                  memlink::conformance::driver::kProtocolVersion);
      return 0;
    }
    std::fprintf(stderr, "memlink-shm-driver: unknown argument '%s' (see --help)\n", a.c_str());
    return 2;
  }
  rd::Fault fault;
  std::string error;
  if (!rd::fault_from_env(fault, error)) {
    std::fprintf(stderr, "memlink-shm-driver: %s\n", error.c_str());
    return 2;
  }
  return rd::serve_lines(STDIN_FILENO, STDOUT_FILENO, fault, workload);
}
