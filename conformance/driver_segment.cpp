// The segment layer through a driver that claims the SPEC layout (M-*): a
// created segment is the named file, mode 0600, of the size asked; a bare
// name is a POSIX shared-memory object (/dev/shm on Linux); a missing or
// truncated segment is refused on connect; a nonsense size on create; a
// segment truncated under a live daemon and a live client kills neither, and
// each then answers with an error (M-TRUNCATE).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "driver_cluster.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

void expect_file(const std::string& file, std::size_t size) {
  struct stat st {};
  record_clause("M-NAME");
  record_clause("M-CREATE");
  if (::stat(file.c_str(), &st) != 0) scenario_fail("M-NAME", "create did not make " + file);
  if ((st.st_mode & 0777) != 0600)
    scenario_fail("M-CREATE", file + " has mode " + std::to_string(st.st_mode & 0777) + " (octal " +
                                  std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                                  std::to_string(st.st_mode & 7) + "), not 0600");
  if (static_cast<std::size_t>(st.st_size) != size)
    scenario_fail("M-CREATE", file + " has " + std::to_string(st.st_size) + " bytes, not the " + std::to_string(size) + " asked for");
}

Reply connect_to(const Params& params, const std::string& segment, const std::string& role) {
  auto p = DriverProcess::start(params.driver, role);
  return p->call({{"op", "connect"}, {"segment", segment}, {"protocol_version", 1}});
}

void check_segments(Cluster& c, int& cases) {
  const Params& params = c.params();
  if (!c.start_daemon(c.daemon).ok()) scenario_fail("M-CREATE", "the driver could not create " + c.path());
  expect_file(c.path(), c.options().segment_size);
  ++cases;
  // A bare name (M-NAME): the POSIX shared-memory object /dev/shm/<name>.
  const std::string bare = "memlink-drv-seg-" + std::to_string(::getpid()) + "-" + std::to_string(cases);
  {
    auto d = DriverProcess::start(params.driver, "daemon of a bare name");
    json req = c.create_request();
    req["segment"] = bare;
    const Reply r = d->call(req);
    c.step("daemon: create '" + bare + "' -> " + (r.ok() ? "ok" : r.error().message()));
    if (!r.ok()) scenario_fail("M-NAME", "create with the bare name '" + bare + "' failed: " + r.error().message());
    expect_file("/dev/shm/" + bare, c.options().segment_size);
    (void)d->call({{"op", "shutdown"}});
    d.reset();
    for (const char* suffix : {"", ".lock", ".pid", ".takeover"}) ::unlink(("/dev/shm/" + bare + suffix).c_str());
    ++cases;
  }
  // M-OPEN: a missing segment, a 9-byte file.
  record_clause("M-OPEN");
  const std::string missing = c.path() + "-missing";
  const Reply none = connect_to(params, missing, "client of a missing segment");
  if (none.ok() || none.error().code != shm::ErrorCode::NotFound)
    scenario_fail("M-OPEN", "connecting to a missing segment answered " + (none.ok() ? std::string("Ok") : none.error().message()) +
                                ", not NotFound");
  const std::string small = c.path() + "-small";
  if (std::FILE* f = std::fopen(small.c_str(), "wb")) {
    std::fputs("too small", f);
    std::fclose(f);
  }
  const Reply tiny = connect_to(params, small, "client of a 9-byte file");
  ::unlink(small.c_str());
  if (tiny.ok() || tiny.error().code != shm::ErrorCode::CorruptSegment)
    scenario_fail("M-OPEN", "connecting to a 9-byte file answered " + (tiny.ok() ? std::string("Ok") : tiny.error().message()) +
                                ", not CorruptSegment");
  cases += 2;
  // M-CREATE: sizes no segment can have.
  for (std::size_t bad : {std::size_t{0}, std::size_t{100}}) {
    auto d = DriverProcess::start(params.driver, "daemon of a " + std::to_string(bad) + "-byte segment");
    json req = c.create_request();
    req["segment"] = c.path() + "-bad";
    req["segment_size"] = bad;
    const Reply r = d->call(req);
    d.reset();
    for (const char* suffix : {"-bad", "-bad.lock", "-bad.pid", "-bad.takeover"}) ::unlink((c.path() + suffix).c_str());
    if (r.ok() || r.error().code != shm::ErrorCode::InvalidArgument)
      scenario_fail("M-CREATE", "creating a segment of " + std::to_string(bad) + " bytes answered " +
                                    (r.ok() ? std::string("Ok") : r.error().message()) + ", not InvalidArgument");
    ++cases;
  }
}

// M-OWNER: the daemon's segment given to another user (root only: chown) is
// refused to a client that was not told to trust that user.
void check_owner(Cluster& c, int& cases) {
  if (::geteuid() != 0) return;  // cannot give a file away: M-OWNER stays NOT COVERED
  record_clause("M-OWNER");
  if (::chown(c.path().c_str(), 65534, 65534) != 0)
    scenario_fail("M-OWNER", "the suite could not chown " + c.path() + ": " + std::strerror(errno));
  c.step("chown " + c.path() + " to uid 65534");
  const Reply r = connect_to(c.params(), c.path(), "client of a segment uid 65534 owns");
  (void)::chown(c.path().c_str(), ::geteuid(), ::getegid());
  c.step(std::string("client: connect -> ") + (r.ok() ? "ok" : r.error().message()));
  if (r.ok() || r.error().code != shm::ErrorCode::PermissionDenied)
    scenario_fail("M-OWNER", "a client running as uid 0 connected to a segment uid 65534 owns (" +
                                 (r.ok() ? std::string("Ok") : r.error().message()) +
                                 "): that user can truncate or rewrite it at any time; it must be PermissionDenied unless asked for");
  ++cases;
}

// M-TRUNCATE: the file shrinks to one page under a daemon and a client that
// are both mid-use. Each must go on answering requests (a SIGBUS would end
// the driver, which the suite sees as D-PROC) and report the loss: after a
// wait, a write answers an error, never Ok into pages that are gone.
void check_truncation(Cluster& c, int& cases) {
  record_clause("M-TRUNCATE");
  driver::DriverProcess& client = c.add_client("client of a segment about to be truncated");
  c.must(client, {{"op", "write"}, {"priority", 1}, {"data", driver::to_hex(std::vector<std::byte>(16))}}, "M-TRUNCATE");
  c.must(*c.daemon, {{"op", "read"}}, "M-TRUNCATE");
  c.step("truncate " + c.path() + " to 4096 bytes");
  if (::truncate(c.path().c_str(), 4096) != 0)
    scenario_fail("M-TRUNCATE", "the suite could not truncate " + c.path() + ": " + std::strerror(errno));
  for (auto* p : {&client, c.daemon.get()}) {
    const std::string who = p == &client ? "the client" : "the daemon";
    try {
      if (c.params().claims("wait")) (void)p->call({{"op", "wait"}, {"timeout_ms", 300}}, std::chrono::seconds(10));
      const Reply w = p->call({{"op", "write"}, {"priority", 2}, {"data", driver::to_hex(std::vector<std::byte>(16))}});
      c.step(who + ": write after the truncation -> " + (w.ok() ? std::string("ok") : w.error().message()));
      (void)p->call({{"op", "read"}});
      if (w.ok())
        scenario_fail("M-TRUNCATE", who + " acknowledged a write after its segment was truncated to one page "
                                          "(the message is in no segment anyone can read)");
    } catch (const driver::DriverFailure& e) {
      scenario_fail("M-TRUNCATE", who + "'s driver did not survive the truncation of its segment: " + std::string(e.what()));
    }
    ++cases;
  }
}

}  // namespace

CheckResult run_driver_segment(const Params& params) {
  CheckResult result;
  result.name = "segment";
  Cluster c(params, "segment");
  try {
    check_segments(c, result.cases);
    check_owner(c, result.cases);
    check_truncation(c, result.cases);
  } catch (const ScenarioFailure& f) {
    result.failure = failure_of(f, c.steps(), driver_replay(params, "segment"));
  }
  return result;
}

}  // namespace memlink::conformance
