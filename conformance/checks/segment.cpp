// The segment layer, through the driver protocol, for a transport that
// claims the SPEC layout (M-*): a created segment is the named file, mode
// 0600 whatever the umask, of the size asked; a bare name is a POSIX
// shared-memory object (/dev/shm on Linux); a missing or truncated segment is
// refused on connect; a size no segment can have on create; a segment given
// to another user is refused (as root); a segment truncated under a live
// daemon and a live client kills neither, and each then answers with
// CorruptSegment (M-TRUNCATE).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "capabilities.hpp"
#include "driver_cluster.hpp"
#include "memlink/shm/layout.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

void expect_file(const Cluster& c, const std::string& file, std::size_t size) {
  struct stat st {};
  c.record(ClauseId::M_NAME);
  c.record(ClauseId::M_CREATE);
  if (::stat(file.c_str(), &st) != 0) scenario_fail(ClauseId::M_NAME, "create did not make " + file);
  if ((st.st_mode & 0777) != 0600)
    scenario_fail(ClauseId::M_CREATE, file + " has mode " + std::to_string(st.st_mode & 0777) + " (octal " +
                                          std::to_string((st.st_mode >> 6) & 7) +
                                          std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                                          "), not 0600");
  if (static_cast<std::size_t>(st.st_size) != size)
    scenario_fail(ClauseId::M_CREATE, file + " has " + std::to_string(st.st_size) + " bytes, not the " +
                                          std::to_string(size) + " asked for");
}

Reply connect_to(Cluster& c, const std::string& segment, const std::string& role) {
  auto p = c.start_owned(role);
  const Reply r = p->call({{"op", "connect"}, {"segment", segment}, {"protocol_version", 1}});
  c.give_back(std::move(p));
  return r;
}

// A bare name (M-NAME): the POSIX shared-memory object /dev/shm/<name>.
void check_bare_name(Cluster& c, int& cases) {
  const std::string bare = "memlink-drv-seg-" + std::to_string(::getpid()) + "-" + std::to_string(cases);
  auto d = c.start_owned("daemon of a bare name");
  json req = c.create_request();
  req["segment"] = bare;
  const Reply r = d->call(req);
  c.step("daemon: create '" + bare + "' -> " + (r.ok() ? "ok" : r.error().message()));
  if (!r.ok())
    scenario_fail(ClauseId::M_NAME, "create with the bare name '" + bare + "' failed: " + r.error().message());
  expect_file(c, "/dev/shm/" + bare, c.options().segment_size);
  (void)d->call({{"op", "shutdown"}});
  c.give_back(std::move(d));
  for (const char* suffix : {"", ".lock", ".pid", ".takeover"}) ::unlink(("/dev/shm/" + bare + suffix).c_str());
  ++cases;
}

// M-OPEN: a missing segment, a 9-byte file.
void check_open_refusals(Cluster& c, int& cases) {
  c.record(ClauseId::M_OPEN);
  const std::string missing = c.path() + "-missing";
  const Reply none = connect_to(c, missing, "client of a missing segment");
  if (none.ok() || none.error().code != shm::ErrorCode::NotFound)
    scenario_fail(ClauseId::M_OPEN, "connecting to a missing segment answered " +
                                        (none.ok() ? std::string("Ok") : none.error().message()) + ", not NotFound");
  const std::string small = c.path() + "-small";
  if (std::FILE* f = std::fopen(small.c_str(), "wb")) {
    std::fputs("too small", f);
    std::fclose(f);
  }
  const Reply tiny = connect_to(c, small, "client of a 9-byte file");
  ::unlink(small.c_str());
  if (tiny.ok() || tiny.error().code != shm::ErrorCode::CorruptSegment)
    scenario_fail(ClauseId::M_OPEN, "connecting to a 9-byte file answered " +
                                        (tiny.ok() ? std::string("Ok") : tiny.error().message()) +
                                        ", not CorruptSegment");
  cases += 2;
}

// M-CREATE: sizes no segment can have (and, where the driver's limits
// are SPEC's, one byte past either end).
void check_bad_sizes(Cluster& c, int& cases) {
  std::vector<std::size_t> bad_sizes{0, 100};
  if (c.params().limits.max_segment == shm::MAX_SEGMENT_SIZE) bad_sizes.push_back(shm::MAX_SEGMENT_SIZE + 1);
  if (c.params().limits.min_segment == shm::MIN_SEGMENT_SIZE) bad_sizes.push_back(shm::MIN_SEGMENT_SIZE - 1);
  for (std::size_t bad : bad_sizes) {
    auto d = c.start_owned("daemon of a " + std::to_string(bad) + "-byte segment");
    json req = c.create_request();
    req["segment"] = c.path() + "-bad";
    req["segment_size"] = bad;
    const Reply r = d->call(req);
    c.give_back(std::move(d));
    for (const char* suffix : {"-bad", "-bad.lock", "-bad.pid", "-bad.takeover"}) ::unlink((c.path() + suffix).c_str());
    if (r.ok() || r.error().code != shm::ErrorCode::InvalidArgument)
      scenario_fail(ClauseId::M_CREATE, "creating a segment of " + std::to_string(bad) + " bytes answered " +
                                            (r.ok() ? std::string("Ok") : r.error().message()) +
                                            ", not InvalidArgument");
    ++cases;
  }
}

// The created segment's file, a bare name, refused opens and impossible sizes,
// all with the umask cleared (restored on return).
void check_segments(Cluster& c, int& cases) {
  // M-CREATE: the mode is exact whatever the umask (a thread-hosted driver
  // shares this process's umask; a process inherits it).
  const mode_t old_umask = ::umask(0);
  struct Restore {
    mode_t m;
    ~Restore() { ::umask(m); }
  } restore{old_umask};
  if (!c.start_daemon(c.daemon).ok()) scenario_fail(ClauseId::M_CREATE, "the driver could not create " + c.path());
  expect_file(c, c.path(), c.options().segment_size);
  ++cases;
  check_bare_name(c, cases);
  check_open_refusals(c, cases);
  check_bad_sizes(c, cases);
}

// M-OWNER: the daemon's segment given to another user (root only: chown) is
// refused to a client that was not told to trust that user.
void check_owner(Cluster& c, int& cases) {
  if (::geteuid() != 0) return;  // cannot give a file away: M-OWNER stays NOT COVERED
  c.record(ClauseId::M_OWNER);
  if (::chown(c.path().c_str(), 65534, 65534) != 0)
    scenario_fail(ClauseId::M_OWNER, "the suite could not chown " + c.path() + ": " + std::strerror(errno));
  c.step("chown " + c.path() + " to uid 65534");
  const Reply r = connect_to(c, c.path(), "client of a segment uid 65534 owns");
  (void)::chown(c.path().c_str(), ::geteuid(), ::getegid());
  c.step(std::string("client: connect -> ") + (r.ok() ? "ok" : r.error().message()));
  if (r.ok() || r.error().code != shm::ErrorCode::PermissionDenied)
    scenario_fail(
        ClauseId::M_OWNER,
        "a client running as uid 0 connected to a segment uid 65534 owns (" +
            (r.ok() ? std::string("Ok") : r.error().message()) +
            "): that user can truncate or rewrite it at any time; it must be PermissionDenied unless asked for");
  ++cases;
}

// M-TRUNCATE: the file shrinks to one page, then to nothing, under a daemon
// and a client that are both mid-use. Each must go on answering requests (a
// SIGBUS would end the driver, which the suite sees as D-PROC) and report the
// loss: after a wait (the loss is noticed within a sleep slice), a write is
// never Ok into pages that are gone, and every operation answers
// CorruptSegment.
void check_truncation(Cluster& c, int& cases) {
  c.record(ClauseId::M_TRUNCATE);
  driver::DriverProcess& client = c.add_client("client of a segment about to be truncated");
  expect_delivery(c, client, *c.daemon);  // both mid-use
  for (const off_t to : {off_t{4096}, off_t{0}}) {
    c.step("truncate " + c.path() + " to " + std::to_string(to) + " bytes");
    if (::truncate(c.path().c_str(), to) != 0)
      scenario_fail(ClauseId::M_TRUNCATE, "the suite could not truncate " + c.path() + ": " + std::strerror(errno));
    for (auto* p : {&client, c.daemon.get()}) {
      const std::string who = p == &client ? "the client" : "the daemon";
      try {
        if (c.params().claims("wait")) (void)p->call({{"op", "wait"}, {"timeout_ms", 300}}, std::chrono::seconds(10));
        const Reply w =
            p->call({{"op", "write"}, {"priority", 2}, {"data", driver::to_hex(std::vector<std::byte>(16))}});
        const Reply r = p->call({{"op", "read"}});
        c.step(who + ": write -> " + (w.ok() ? std::string("ok") : w.error().message()) + ", read -> " +
               (r.ok() ? std::string("a message") : r.error().message()));
        if (w.ok())
          scenario_fail(ClauseId::M_TRUNCATE, who + " acknowledged a write after its segment was truncated to " +
                                                  std::to_string(to) +
                                                  " bytes (the message is in no segment anyone can read)");
        for (const Reply* x : {&w, &r})
          if (x->ok() || x->error().code != shm::ErrorCode::CorruptSegment)
            scenario_fail(ClauseId::M_TRUNCATE,
                          who + "'s " + (x == &w ? "write" : "read") + " after its segment was truncated to " +
                              std::to_string(to) + " bytes answered " +
                              (x->ok() ? std::string("a message") : x->error().message()) + ", not CorruptSegment");
      } catch (const driver::DriverFailure& e) {
        scenario_fail(ClauseId::M_TRUNCATE,
                      who + "'s driver did not survive the truncation of its segment: " + std::string(e.what()));
      }
      ++cases;
    }
  }
}

}  // namespace

Gates segment_gates() { return {{"a wait before the truncated endpoints are asked to write and read", {"wait"}}}; }

CheckResult run_segment(const Params& params) {
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
