// The segment layer of the reference library (M-*): names, creation, opening.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/mmap.hpp"
#include "memlink/shm/transport.hpp"
#include "suite.hpp"

namespace memlink::conformance {
namespace {

Failure failure(const std::string& clause, const std::string& what) {
  return Failure{clause, "[" + clause + "] " + what, {}, "scripts/conformance --only segment"};
}

std::optional<Failure> check_name(const std::string& name, bool posix) {
  record_clause("M-NAME");
  record_clause("M-CREATE");
  (void)shm::MmapSegment::remove(name);
  const mode_t old = ::umask(0);  // M-CREATE: the mode is exact whatever the umask
  auto seg = shm::MmapSegment::create(name, 8192);
  ::umask(old);
  if (!seg) return failure("M-CREATE", "create '" + name + "': " + seg.error().message());
  const std::string file = posix ? "/dev/shm/" + name : name;  // where Linux keeps POSIX shm objects
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return failure("M-NAME", "'" + name + "' did not create " + file);
  if ((st.st_mode & 0777) != 0600) return failure("M-CREATE", file + " has mode " + std::to_string(st.st_mode & 0777) + ", not 0600");
  if (st.st_size != 8192) return failure("M-CREATE", file + " has the wrong size");
  for (std::size_t i = 0; i < seg->size(); ++i)
    if (seg->data()[i] != std::byte{0}) return failure("M-CREATE", "a new segment is not zero-filled");
  if (shm::MmapSegment::create(name, 8192).code() != shm::ErrorCode::AlreadyExists)
    return failure("M-CREATE", "creating over an existing segment did not say AlreadyExists");
  (void)shm::MmapSegment::remove(name);
  return std::nullopt;
}

// M-TRUNCATE: the file shrinks under a live daemon and client; both go on
// (a SIGBUS would end the whole suite) and each operation fails by name.
std::optional<Failure> check_truncation(const std::string& path) {
  record_clause("M-TRUNCATE");
  (void)shm::MmapSegment::remove(path);
  shm::DaemonOptions opt;
  opt.heartbeat_interval = std::chrono::milliseconds(1);
  opt.heartbeat_timeout = std::chrono::milliseconds(100);
  auto daemon = shm::Daemon::create(path, 65536, 1, opt);
  if (!daemon) return failure("M-TRUNCATE", "create '" + path + "': " + daemon.error().message());
  auto client = shm::Client::connect(path, 1);
  if (!client) return failure("M-TRUNCATE", "connect '" + path + "': " + client.error().message());
  for (std::size_t to : {std::size_t{4096}, std::size_t{0}}) {
    if (::truncate(path.c_str(), static_cast<off_t>(to)) != 0) return failure("M-TRUNCATE", "cannot truncate " + path);
    (void)client->wait(std::chrono::milliseconds(5));
    (void)daemon->wait(std::chrono::milliseconds(5));
    if (client->write(shm::Priority::Low, "after").ok())
      return failure("M-TRUNCATE", "a client write was acknowledged after the segment was truncated to " + std::to_string(to) + " bytes");
    auto r = daemon->read();
    if (r.ok() || r.code() != shm::ErrorCode::CorruptSegment)
      return failure("M-TRUNCATE", "the daemon's read after the segment was truncated to " + std::to_string(to) + " bytes answered " +
                                       (r.ok() ? std::string("a message") : r.error().message()) + ", not CorruptSegment");
  }
  client->shutdown();
  daemon->shutdown();
  return std::nullopt;
}

// M-OWNER: a segment another user owns is PermissionDenied unless any owner
// is accepted. Needs root to give a file away; otherwise nothing is recorded
// (the clause stays NOT COVERED rather than passing unchecked).
std::optional<Failure> check_owner(const std::string& path) {
  if (::geteuid() != 0) return std::nullopt;
  record_clause("M-OWNER");
  (void)shm::MmapSegment::remove(path);
  if (!shm::MmapSegment::create(path, 8192)) return failure("M-OWNER", "cannot create " + path);
  if (::chown(path.c_str(), 65534, 65534) != 0) return failure("M-OWNER", "cannot chown " + path + " to uid 65534");
  const auto refused = shm::MmapSegment::open(path);
  const auto accepted = shm::MmapSegment::open(path, shm::MmapSegment::Access::ReadWrite, shm::MmapSegment::Owner::Anyone);
  (void)shm::MmapSegment::remove(path);
  if (refused.ok() || refused.code() != shm::ErrorCode::PermissionDenied)
    return failure("M-OWNER", "a segment owned by uid 65534 was opened by uid 0 without being asked to trust it (" +
                                  (refused.ok() ? std::string("Ok") : refused.error().message()) + ")");
  if (!accepted) return failure("M-OWNER", "a foreign segment was refused even with Owner::Anyone: " + accepted.error().message());
  return std::nullopt;
}

}  // namespace

CheckResult run_segment(const Params&) {
  CheckResult result;
  result.name = "segment";
  static std::atomic<int> counter{0};
  const std::string base = "memlink-segcheck-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  for (const auto& [name, posix] : {std::pair{base, true}, std::pair{"/dev/shm/" + base + "-file", false}}) {
    if (auto f = check_name(name, posix)) {
      result.failure = f;
      return result;
    }
    ++result.cases;
  }
  record_clause("M-OPEN");
  const std::string path = "/dev/shm/" + base + "-open";
  (void)shm::MmapSegment::remove(path);
  if (shm::MmapSegment::open(path).code() != shm::ErrorCode::NotFound) {
    result.failure = failure("M-OPEN", "opening a missing segment did not say NotFound");
    return result;
  }
  for (std::size_t bad : {std::size_t{0}, shm::MIN_SEGMENT_SIZE - 1, shm::MAX_SEGMENT_SIZE + 1}) {
    if (shm::MmapSegment::create(path, bad).code() != shm::ErrorCode::InvalidArgument) {
      result.failure = failure("M-CREATE", "creating a segment of " + std::to_string(bad) + " bytes was not refused");
      return result;
    }
    ++result.cases;
  }
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fputs("too small", f);
    std::fclose(f);
  }
  auto small = shm::MmapSegment::open(path);
  (void)shm::MmapSegment::remove(path);
  if (small.code() != shm::ErrorCode::CorruptSegment) {
    result.failure = failure("M-OPEN", "a 9-byte file was not refused as CorruptSegment");
    return result;
  }
  ++result.cases;
  if (auto f = check_owner("/dev/shm/" + base + "-owner")) {
    result.failure = f;
    return result;
  }
  if (auto f = check_truncation("/dev/shm/" + base + "-trunc")) {
    result.failure = f;
    return result;
  }
  ++result.cases;
  return result;
}

}  // namespace memlink::conformance
