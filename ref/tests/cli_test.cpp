// The memlink-shm tool driven as a user would: real processes, real exit codes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "memlink/shm/control.hpp"
#include "memlink/shm/layout.hpp"
#include "memlink/shm/mmap.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/slot.hpp"
#include "memlink/shm/transport.hpp"
#include "memlink/shm/version.hpp"
#include "test_support.hpp"

extern char** environ;

namespace memlink::shm {
namespace {

using namespace std::chrono_literals;

struct Run {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// `prefix` runs the tool under another command (e.g. "timeout 10").
Run run_tool(const std::string& args, const std::string& prefix = "") {
  const std::string base = "/tmp/memlink-cli-" + std::to_string(::getpid());
  // Absolute, so that a prefix may change directory (Bazel names the tool
  // relative to the test's working directory).
  const std::string tool = std::filesystem::exists(MEMLINK_SHM_TOOL)
                               ? std::filesystem::absolute(MEMLINK_SHM_TOOL).string()
                               : std::string(MEMLINK_SHM_TOOL);
  const std::string cmd = prefix + (prefix.empty() ? "" : " ") + tool + " " + args + " >" + base + ".out 2>" + base + ".err";
  Run r;
  const int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

// Starts `memlink-shm daemon PATH ...` in the background and waits until a
// client can connect.
pid_t start_daemon(const std::string& path, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{MEMLINK_SHM_TOOL, "daemon", path, "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, MEMLINK_SHM_TOOL, nullptr, nullptr, argv.data(), environ) != 0) return -1;
  for (int i = 0; i < 500; ++i) {
    if (Client::connect(path, 1).ok()) return pid;
    std::this_thread::sleep_for(10ms);
  }
  ::kill(pid, SIGKILL);
  return -1;
}

// Starts the tool with `args` in the background, its stdout and stderr to
// `log`; -1 if it could not be started.
pid_t spawn_tool(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), MEMLINK_SHM_TOOL);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, MEMLINK_SHM_TOOL, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// A 64 KiB daemon logging to `log`, once a client can connect; -1 if it
// could not be started.
pid_t start_small_daemon(const std::string& path, const std::string& log) {
  const pid_t d = spawn_tool({"daemon", path, "--size", "65536"}, log);
  for (int i = 0; d > 0 && i < 500 && !Client::connect(path, 1).ok(); ++i) std::this_thread::sleep_for(10ms);
  return d;
}

// Waits up to `limit` for `pid` to end: its exit status, -signal if a signal
// ended it, or 1000 if it was still running (then it is killed).
int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return 1000;
    }
    std::this_thread::sleep_for(10ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int stop(pid_t pid, int sig = SIGTERM) {
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

TEST(Cli, HelpOnEveryCommand) {
  auto top = run_tool("--help");
  EXPECT_EQ(top.status, 0);
  for (const char* sub : {"daemon", "client", "inspect", "cleanup"}) {
    EXPECT_NE(top.out.find(sub), std::string::npos) << sub;
    auto r = run_tool(std::string(sub) + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.out.find("PATH"), std::string::npos) << sub;
  }
  EXPECT_NE(run_tool("").status, 0);  // a subcommand is required
  EXPECT_NE(run_tool("client /x --payload 4097").status, 0);
}

// Every nonsense flag or value is a usage error: exit 2 with a message, as
// README documents (CLI11's own codes were 104-109), and nothing aborts
// (--count 2^64-1 aborted with length_error, 1e11 with bad_alloc; --timeout
// inf/nan/1e300/-1 were accepted and timed out at once).
TEST(Cli, UsageErrorsExitTwoAndNothingAborts) {  // issue 14
  for (const char* args : {"client /dev/shm/memlink-cli-none --count 0", "client /dev/shm/memlink-cli-none --count 18446744073709551615",
                           "client /dev/shm/memlink-cli-none --count 1e11", "client /dev/shm/memlink-cli-none --count -5",
                           "client /dev/shm/memlink-cli-none --timeout inf", "client /dev/shm/memlink-cli-none --timeout nan",
                           "client /dev/shm/memlink-cli-none --timeout 1e300", "client /dev/shm/memlink-cli-none --timeout -1",
                           "client /dev/shm/memlink-cli-none --timeout 0", "daemon /dev/shm/memlink-cli-none --no-such-flag",
                           "no-such-command", "daemon /dev/shm/memlink-cli-none --size 12", "client"}) {
    const auto r = run_tool(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << args;
  }
  const auto version = run_tool("--version");
  EXPECT_EQ(version.status, 0);
  EXPECT_NE(version.out.find("memlink-shm " MEMLINK_SHM_VERSION " (layout version"), std::string::npos) << version.out;
  EXPECT_EQ(run_tool("client --help").status, 0);
}

// "" as a path created './.lock' and './.takeover' in the working directory
// (and any failed start left them behind).
TEST(Cli, AnEmptyPathIsRefusedAndLeavesNothing) {  // issue 14
  const std::string dir = "/tmp/memlink-cli-empty-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (const char* cmd : {"daemon ''", "cleanup ''", "inspect ''", "client '' --count 1"}) {
    const auto r = run_tool(cmd, "cd " + dir + " &&");
    EXPECT_EQ(r.status, 2) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("empty"), std::string::npos) << cmd << ": " << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "files were left in " << dir;
  std::filesystem::remove_all(dir);
}

// A JSON report that cannot be written is an error, not a silent exit 0.
TEST(Cli, AnUnwritableJsonReportIsAnError) {  // issue 14
  test::TempSegmentPath path("clijson");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  const auto r = run_tool("client " + path.str() + " --count 5 --json /nonexistent-dir/memlink/report.json");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("cannot write the JSON report"), std::string::npos) << r.err;
  stop(d);
}

// inspect (and a client) on a FIFO used to hang in open(2); what is not a
// regular file is refused at once, naming what it is.
TEST(Cli, AFifoOrADirectoryIsRefusedWithoutBlocking) {  // issue 14
  const std::string fifo = "/tmp/memlink-cli-fifo-" + std::to_string(::getpid());
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& cmd : std::vector<std::string>{"inspect " + fifo, "client " + fifo + " --count 1", "inspect /tmp"}) {
    const auto r = run_tool(cmd, "timeout 10");  // a hang is exit 124
    EXPECT_EQ(r.status, 2) << cmd << "\n" << r.err;
    EXPECT_TRUE(r.err.find("FIFO") != std::string::npos || r.err.find("directory") != std::string::npos) << cmd << ": " << r.err;
  }
  ::unlink(fifo.c_str());
}

// A peer that shrank the segment killed the daemon and the client with SIGBUS
// within 0.1 s. Both now stop with an error naming the cause (SPEC M-TRUNCATE).
TEST(Cli, ATruncatedSegmentStopsDaemonAndClientWithAnErrorNotASignal) {  // issue 14
  for (const char* size : {"0", "4096"}) {
    test::TempSegmentPath path("clitrunc");
    const std::string dlog = path.str() + ".daemon.log", clog = path.str() + ".client.log";
    const pid_t d = start_small_daemon(path.str(), dlog);
    ASSERT_GT(d, 0);
    const pid_t c = spawn_tool({"client", path.str(), "--count", "100000000", "--timeout", "30"}, clog);
    ASSERT_GT(c, 0);
    std::this_thread::sleep_for(300ms);  // mid-exchange
    ASSERT_EQ(::truncate(path.str().c_str(), std::stol(size)), 0);
    const int dc = wait_exit(d, 20s), cc = wait_exit(c, 20s);
    // A flood of one repeated line (the first version wrote gigabytes) is a failure, not an OOM.
    ASSERT_LT(std::filesystem::file_size(dlog), 100000u) << "the daemon's log grew without bound";
    ASSERT_LT(std::filesystem::file_size(clog), 100000u) << "the client's log grew without bound";
    const std::string dtext = slurp(dlog), ctext = slurp(clog);
    EXPECT_EQ(dc, 2) << "truncated to " << size << ": daemon " << (dc < 0 ? "killed by a signal" : "exit") << "\n" << dtext;
    EXPECT_EQ(cc, 2) << "truncated to " << size << ": client " << (cc < 0 ? "killed by a signal" : "exit") << "\n" << ctext;
    EXPECT_NE(dtext.find("M-TRUNCATE"), std::string::npos) << dtext;
    EXPECT_NE(ctext.find("M-TRUNCATE"), std::string::npos) << ctext;
    // The files went with the daemon: a restart does not need 'cleanup' (it said AlreadyExists).
    EXPECT_FALSE(std::filesystem::exists(path.str())) << "the truncated segment was left behind";
    EXPECT_FALSE(std::filesystem::exists(path.str() + ".lock")) << "the daemon's lock file was left behind";
    std::remove(dlog.c_str());
    std::remove(clog.c_str());
  }
}

// A hostile peer's view of a live daemon's segment: the c2d critical ring
// (the first ring after the control region; SPEC R-LAYOUT, S-LAYOUT).
struct PeerRing {
  MmapSegment seg;
  static std::optional<PeerRing> map(const std::string& path) {
    auto s = MmapSegment::open(path);
    if (!s) return std::nullopt;
    return PeerRing{std::move(s.value())};
  }
  std::atomic<std::uint64_t>& head() {
    return *reinterpret_cast<std::atomic<std::uint64_t>*>(seg.data() + RING_BUFFER_OFFSET + offsetof(RingHeader, head));
  }
  SlotHeader& slot0() { return *reinterpret_cast<SlotHeader*>(seg.data() + RING_BUFFER_OFFSET + RING_HEADER_SIZE); }
};

// A small daemon whose segment a misbehaving peer has just written to:
// `peer` runs on the mapped segment once the daemon serves. -1 (and no
// daemon left running) if the daemon did not start or the segment could
// not be mapped.
pid_t start_small_daemon_beside_peer(const std::string& path, const std::string& log,
                                     const std::function<void(PeerRing&)>& peer) {
  const pid_t d = start_small_daemon(path, log);
  if (d <= 0) return -1;
  auto ring = PeerRing::map(path);
  if (!ring) {
    stop(d, SIGKILL);
    return -1;
  }
  peer(*ring);
  return d;
}

// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A c2d tail slot set to Reading with a live owner made the daemon spin (60 %
// of 2 cores) and log 400,000 lines in 5 s. A held tail is not a message
// (T-WAIT, R-HELD): the daemon sleeps, logs the condition once and backs off.
TEST(Cli, ASlotHeldByALiveProcessCostsNeitherACpuNorTheDisk) {  // issue 14
  test::TempSegmentPath path("cliheld");
  const std::string dlog = path.str() + ".daemon.log";
  const pid_t d = start_small_daemon_beside_peer(path.str(), dlog, [](PeerRing& ring) {
    // Reading, lap 0, by this test (alive).
    ring.slot0().word.store(slot_word(SlotState::Reading, static_cast<std::uint32_t>(::getpid()), 0));
    ring.head().fetch_add(1);
  });
  ASSERT_GT(d, 0) << "no daemon, or its segment could not be mapped: " << path.str();
  const double cpu0 = cpu_seconds(d);
  std::this_thread::sleep_for(2s);
  const double used = cpu_seconds(d) - cpu0;
  EXPECT_EQ(stop(d), 0);
  ASSERT_LT(std::filesystem::file_size(dlog), 100000u) << "the daemon's log grew without bound";
  const std::string text = slurp(dlog);
  EXPECT_LT(used, 1.0) << "the daemon used " << used << " CPU seconds in 2 s beside a held slot";
  EXPECT_LT(std::count(text.begin(), text.end(), '\n'), 6) << text;
  EXPECT_NE(text.find("Reading by pid"), std::string::npos) << "the held slot was never reported:\n" << text;
  std::remove(dlog.c_str());
}

// 100 clients killed with kill -9 mid-exchange left client_count at 99 and
// their unread answers in d2c, so the next client reported 999 of 1000
// answers mismatched. Dead clients are reaped by pid (K-CLIENTS) and the
// client tells its own answers from leftovers by a per-run nonce.
TEST(Cli, ClientsKilledMidExchangeLeaveNothingThatMisleadsTheNext) {  // issue 14
  test::TempSegmentPath path("clikill");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  for (int i = 0; i < 100; ++i) {
    const pid_t c = spawn_tool({"client", path.str(), "--count", "100000000", "--payload", "64"}, "/dev/null");
    ASSERT_GT(c, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + i % 20));  // somewhere mid-exchange
    ::kill(c, SIGKILL);
    ::waitpid(c, nullptr, 0);
  }
  const auto r = run_tool("client " + path.str() + " --count 1000 --json -");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["matched"].get<int>(), 1000) << r.out;
  EXPECT_EQ(j["mismatched"].get<int>(), 0) << r.out;
  const auto ins = run_tool("inspect --json " + path.str());
  const auto report = nlohmann::json::parse(ins.out);
  EXPECT_EQ(report["control"]["client_count"].get<int>(), 0) << "killed clients still count as connected";
  EXPECT_EQ(stop(d), 0);
}

// On a c2d head/tail inconsistency the daemon exited and deleted the segment,
// its lock and PID file: the evidence went with it. It now stops and leaves
// the poisoned segment for inspect; a new daemon refuses it; cleanup removes it.
TEST(Cli, APoisonedSegmentIsKeptAsEvidence) {  // issue 14
  test::TempSegmentPath path("clipoison");
  const std::string dlog = path.str() + ".daemon.log";
  const pid_t d = start_small_daemon_beside_peer(path.str(), dlog, [](PeerRing& ring) {
    ring.head().store(1000);  // head - tail > capacity (R-POSITIONS)
  });
  ASSERT_GT(d, 0) << "no daemon, or its segment could not be mapped: " << path.str();
  if (auto c = Client::connect(path.str(), 1); c.ok()) (void)c->signal();  // wake it
  const int status = wait_exit(d, 20s);
  EXPECT_EQ(status, 2) << slurp(dlog);
  EXPECT_TRUE(std::filesystem::exists(path.str())) << "the poisoned segment was deleted:\n" << slurp(dlog);
  const auto ins = run_tool("inspect " + path.str());
  EXPECT_NE(ins.out.find("POISONED"), std::string::npos) << ins.out << ins.err;
  const auto again = run_tool("daemon " + path.str() + " --quiet", "timeout 20");
  EXPECT_EQ(again.status, 2) << again.err;
  EXPECT_NE(again.err.find("poisoned"), std::string::npos) << again.err;
  EXPECT_EQ(run_tool("cleanup " + path.str()).status, 0);
  EXPECT_FALSE(std::filesystem::exists(path.str()));
  std::remove(dlog.c_str());
}

// A segment another user owns can be truncated or rewritten by that user at
// any time: a root process attached to an unprivileged user's segment was at
// their mercy. Refused unless asked for (SPEC M-OWNER).
TEST(Cli, ASegmentOwnedByAnotherUserIsRefusedUnlessAskedFor) {  // issue 14
  // Not root: no segment can be given to another user, and another user's
  // file is refused by the OS before memlink's check is reached (the client
  // opens read-write). MmapSegment.ASegmentAnotherUserOwnsIsRefusedUnless...
  // covers the check without root; CI runs as root, where this runs.
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a segment to another user (chown)";
  test::TempSegmentPath path("cliowner");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  ASSERT_EQ(::chown(path.str().c_str(), 65534, 65534), 0);  // nobody
  const auto refused = run_tool("client " + path.str() + " --count 5");
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("owned by uid 65534"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-foreign-owner"), std::string::npos) << refused.err;
  const auto asked = run_tool("client " + path.str() + " --count 5 --allow-foreign-owner");
  EXPECT_EQ(asked.status, 0) << asked.out << asked.err;
  EXPECT_EQ(run_tool("inspect " + path.str()).status, 0);  // read-only inspection accepts any owner
  EXPECT_EQ(::kill(d, SIGKILL), 0);                        // a dead daemon's segment, still another user's
  ::waitpid(d, nullptr, 0);
  // Issue 30: cleanup (root's) removed another user's segment unasked.
  const auto kept = run_tool("cleanup " + path.str());
  EXPECT_EQ(kept.status, 2) << kept.out << kept.err;
  EXPECT_NE(kept.err.find("--allow-foreign-owner"), std::string::npos) << kept.err;
  EXPECT_TRUE(std::filesystem::exists(path.str())) << "cleanup removed another user's segment";
  const auto replaced = run_tool("daemon " + path.str() + " --replace --quiet", "timeout 20");
  EXPECT_EQ(replaced.status, 2) << replaced.out << replaced.err;
  EXPECT_TRUE(std::filesystem::exists(path.str())) << "--replace removed another user's segment";
  const auto removed = run_tool("cleanup " + path.str() + " --allow-foreign-owner");
  EXPECT_EQ(removed.status, 0) << removed.out << removed.err;
  EXPECT_FALSE(std::filesystem::exists(path.str()));
}

TEST(Cli, DaemonAndClientExchangeAcrossProcesses) {
  test::TempSegmentPath path("cli");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  auto r = run_tool("client " + path.str() + " --count 600 --payload 1000 --json -");
  EXPECT_EQ(r.status, 0) << r.err;
  const std::string json_text = r.out.substr(r.out.find('{'));
  auto j = nlohmann::json::parse(json_text);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["matched"].get<int>(), 600);
  EXPECT_GT(j["rtt_us"]["p50"].get<double>(), 0.0);
  EXPECT_NE(r.out.find("p99"), std::string::npos);

  auto ins = run_tool("inspect --json " + path.str());
  EXPECT_EQ(ins.status, 0) << ins.err;
  auto report = nlohmann::json::parse(ins.out);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_EQ(report["control"]["client_head"].get<int>(), 600);
  EXPECT_EQ(report["control"]["daemon_alive"].get<int>(), 1);
  EXPECT_TRUE(report["control"]["daemon_process_exists"].get<bool>());
  EXPECT_TRUE(report["daemon_lock"]["held"].get<bool>());
  EXPECT_EQ(report["daemon_lock"]["recorded_pid"].get<int>(), d);
  ASSERT_EQ(report["rings"].size(), 6u);
  for (const auto& ring : report["rings"]) {
    EXPECT_EQ(ring["pending"].get<int>(), 0);
    EXPECT_EQ(ring["states"]["Empty"].get<unsigned>(), ring["capacity"].get<unsigned>());
  }
  auto table = run_tool("inspect " + path.str());
  EXPECT_EQ(table.status, 0);
  EXPECT_NE(table.out.find("c2d/critical"), std::string::npos);

  EXPECT_EQ(stop(d), 0);
  EXPECT_EQ(run_tool("inspect " + path.str()).status, 2);  // removed on clean shutdown
}

TEST(Cli, ClientWithTheWrongVersionFails) {
  test::TempSegmentPath path("cliver");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  auto r = run_tool("client " + path.str() + " --protocol-version 2 --count 1");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("ProtocolMismatch"), std::string::npos) << r.err;
  stop(d);
}

TEST(Cli, DaemonRefusesToTakeOverGarbageWithAHint) {
  test::TempSegmentPath path("cliexist");
  test::write_file(path.str(), std::vector<std::byte>(8192));
  auto r = run_tool("daemon " + path.str());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("CorruptSegment"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not a memlink segment"), std::string::npos) << r.err;
  // 8 KiB of zeros is no memlink segment: cleanup leaves it alone (K-ORPHAN).
  auto c = run_tool("cleanup " + path.str());
  EXPECT_EQ(c.status, 2) << c.err;
  EXPECT_TRUE(std::filesystem::exists(path.str()));
  // A memlink segment whose ring is corrupt gets the cleanup hint, and
  // cleanup removes it (no daemon holds the lock), and is idempotent.
  {
    DaemonOptions keep;
    keep.remove_on_shutdown = false;
    auto d = Daemon::create(path.str() + "-seg", DEFAULT_SEGMENT_SIZE, 1, keep);
    ASSERT_TRUE(d.ok()) << d.error().message();
  }
  std::filesystem::remove(path.str());
  std::filesystem::rename(path.str() + "-seg", path.str());  // left by a daemon that shut down
  auto fs = std::fstream(path.str(), std::ios::in | std::ios::out | std::ios::binary);
  const auto g = compute_geometry(DEFAULT_SEGMENT_SIZE);
  ASSERT_TRUE(g.ok());
  fs.seekp(static_cast<std::streamoff>(g->offset(Direction::ClientToDaemon, Priority::Critical) + 4));  // ring capacity
  fs.write("\xff\xff\xff\x7f", 4);
  fs.close();
  auto again = run_tool("daemon " + path.str());
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("--replace"), std::string::npos) << again.err;
  auto ok = run_tool("cleanup " + path.str());
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_FALSE(std::filesystem::exists(path.str()));
  EXPECT_EQ(run_tool("cleanup " + path.str()).status, 0);
}

// cleanup (and daemon --replace) removed whatever the name pointed at: a
// regular file, a FIFO, a live daemon's lock file given as a bare name. Only
// a memlink segment (its magic) and its own side files may go (K-ORPHAN).
TEST(Cli, CleanupRemovesNothingButAMemlinkSegment) {  // issue 14
  const std::string dir = "/tmp/memlink-cli-cleanup-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/notes.txt") << "somebody's notes, not a segment\n";
  ASSERT_EQ(::mkfifo((dir + "/pipe").c_str(), 0600), 0);
  for (const std::string& name : {"notes.txt", "pipe"}) {
    const auto r = run_tool("cleanup " + dir + "/" + name, "timeout 10");
    EXPECT_EQ(r.status, 2) << name << ": " << r.err;
    EXPECT_NE(r.err.find("not removing"), std::string::npos) << name << ": " << r.err;
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + name)) << name << " was removed";
    const auto replace = run_tool("daemon " + dir + "/" + name + " --replace --quiet", "timeout 10");
    EXPECT_EQ(replace.status, 2) << name << ": " << replace.err;
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + name)) << name << " was removed by --replace";
    // Issue 30, item 12: nothing of ours stays beside the foreign file.
    EXPECT_FALSE(std::filesystem::exists(dir + "/" + name + ".takeover")) << name << ": a refusal left .takeover";
  }
  // A live daemon's lock file named as if it were a segment.
  test::TempSegmentPath path("clilockname");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  const auto lock = run_tool("cleanup " + path.str() + ".lock");
  EXPECT_EQ(lock.status, 2) << lock.err;
  EXPECT_TRUE(std::filesystem::exists(path.str() + ".lock"));
  EXPECT_TRUE(Client::connect(path.str(), 1).ok());
  stop(d, SIGTERM);
  std::filesystem::remove_all(dir);
}

// Issue 30, item 2: a FIFO planted at <seg>.pid hung inspect, cleanup and
// a starting daemon for ever (the PID file was read with a blocking,
// link-following stream), and a link there was read through. Now a PID file
// is read only if it is a regular file of ours, never blocking.
// A daemon a failed assertion leaves behind is killed, not left holding
// the test's stdout.
struct KillAtExit {
  pid_t pid;
  ~KillAtExit() {
    if (pid > 0 && ::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
  }
};

// The daemon writes its PID file once it serves, a moment after a client
// can connect.
bool wait_for_file(const std::string& path) {
  for (int i = 0; i < 1000 && !std::filesystem::exists(path); ++i) std::this_thread::sleep_for(10ms);
  return std::filesystem::exists(path);
}

TEST(Cli, AFifoOrALinkAtThePidFileHangsNothingAndIsNotReadThrough) {  // issue 30
  test::TempSegmentPath path("clipidfifo");
  const std::string pid = path.str() + ".pid", other = path.str() + ".other";
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  KillAtExit guard{d};
  ASSERT_TRUE(wait_for_file(pid));
  ASSERT_EQ(::unlink(pid.c_str()), 0);
  ASSERT_EQ(::mkfifo(pid.c_str(), 0600), 0);
  for (const std::string& cmd :
       {"inspect " + path.str(), "cleanup " + path.str(), "daemon " + path.str() + " --quiet"}) {
    const auto r = run_tool(cmd, "timeout 20");  // a hang is exit 124
    EXPECT_NE(r.status, 124) << cmd << " hung on a FIFO at " << pid;
    if (cmd.rfind("inspect", 0) != 0)
      EXPECT_NE(r.status, 0) << cmd << " (a live daemon holds the path)\n" << r.out << r.err;
  }
  ASSERT_EQ(::unlink(pid.c_str()), 0);
  std::ofstream(other) << "4242\n";
  ASSERT_EQ(::symlink(other.c_str(), pid.c_str()), 0);
  const auto r = run_tool("inspect " + path.str() + " --json", "timeout 20");
  EXPECT_EQ(r.out.find("4242"), std::string::npos) << "the PID file was read through a link:\n" << r.out;
  stop(d, SIGTERM);
  guard.pid = -1;
  EXPECT_TRUE(std::filesystem::exists(other)) << "shutdown removed the target of a link";
  std::filesystem::remove(pid);
  std::filesystem::remove(other);
}

// Issue 30, item 3: a daemon's shutdown unlinked whatever was at its
// segment, .pid and .lock names by then: a user's file moved there, or a
// second daemon's live files after the first one's were removed by hand.
TEST(Cli, ShutdownRemovesOnlyTheFilesItMade) {  // issue 30
  test::TempSegmentPath path("clishutdownown");
  const std::string notes = path.str() + ".notes";
  pid_t a = start_daemon(path.str());
  ASSERT_GT(a, 0);
  KillAtExit guard_a{a};
  std::ofstream(notes) << "the user's notes, 2 MB of them in the report\n";
  ASSERT_EQ(::rename(notes.c_str(), path.str().c_str()), 0);
  EXPECT_EQ(stop(a, SIGINT), 0);
  guard_a.pid = -1;
  EXPECT_EQ(slurp(path.str()), "the user's notes, 2 MB of them in the report\n") << "shutdown deleted the user's file";
  std::filesystem::remove(path.str());

  a = start_daemon(path.str());
  ASSERT_GT(a, 0);
  guard_a.pid = a;
  ASSERT_TRUE(wait_for_file(path.str() + ".pid"));
  for (const char* suffix : {"", ".pid", ".lock"}) ASSERT_EQ(::unlink((path.str() + suffix).c_str()), 0) << suffix;
  const pid_t b = start_daemon(path.str());
  ASSERT_GT(b, 0);
  KillAtExit guard_b{b};
  ASSERT_TRUE(wait_for_file(path.str() + ".pid"));
  EXPECT_EQ(stop(a, SIGINT), 0);
  guard_a.pid = -1;
  for (const char* suffix : {"", ".pid", ".lock"})
    EXPECT_TRUE(std::filesystem::exists(path.str() + suffix))
        << "the first daemon's shutdown removed the second's " << suffix;
  EXPECT_TRUE(Client::connect(path.str(), 1).ok());
  const auto third = run_tool("daemon " + path.str() + " --quiet", "timeout 20");
  EXPECT_NE(third.status, 0) << "a third daemon started beside a live one:\n" << third.out << third.err;
  EXPECT_EQ(stop(b, SIGINT), 0);
  guard_b.pid = -1;
  EXPECT_FALSE(std::filesystem::exists(path.str())) << "the second daemon's own segment stayed";
}

// Issue 30, item 9: cleanup (root's included) removed another user's
// regular files and FIFOs at <seg>.pid and <seg>.lock, and said it removed
// the segment when there was none.
TEST(Cli, CleanupLeavesSideFilesThatAreNotOurs) {  // issue 30
  test::TempSegmentPath path("clicleanupside");
  const std::string pid = path.str() + ".pid", lock = path.str() + ".lock";
  ASSERT_EQ(::mkfifo(lock.c_str(), 0600), 0);
  std::ofstream(pid) << "4242\n";
  const bool root = ::geteuid() == 0;
  if (root) ASSERT_EQ(::chown(pid.c_str(), 65534, 65534), 0);
  const auto r = run_tool("cleanup " + path.str(), "timeout 20");
  EXPECT_NE(r.status, 124);
  EXPECT_TRUE(std::filesystem::exists(lock)) << "cleanup removed a FIFO at the lock's name";
  if (root) EXPECT_TRUE(std::filesystem::exists(pid)) << "root's cleanup removed another user's file";
  EXPECT_EQ(r.out.find("removed the segment"), std::string::npos) << "there was no segment:\n" << r.out;
  std::filesystem::remove(pid);
  std::filesystem::remove(lock);
}

// Issue 30, item 12: zeroed pages under a live daemon (holes punched in the
// file) were reported as "fenced: another daemon took over". No daemon
// serves epoch 0 (K-TAKEOVER): the daemon stops naming the corruption.
TEST(Cli, ZeroedPagesAreACorruptSegmentNotATakeover) {  // issue 30
  test::TempSegmentPath path("clizeroed");
  const std::string log = path.str() + ".daemon.log";
  const pid_t d = start_small_daemon(path.str(), log);
  ASSERT_GT(d, 0);
  KillAtExit guard{d};
  const int fd = ::open(path.str().c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::vector<char> zeros(4096, 0);
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), 0), 4096);  // the control region, as a punched hole reads
  ::close(fd);
  const int status = wait_exit(d, 60s);
  guard.pid = -1;
  const std::string text = slurp(log);
  EXPECT_EQ(status, 2) << text;
  EXPECT_NE(text.find("control.epoch"), std::string::npos) << text;
  EXPECT_EQ(text.find("another daemon took over"), std::string::npos) << text;
  std::remove(log.c_str());
}

// Issue 30, item 4: a live daemon was taken over (and fenced) through a
// symlink or a hard link to its segment: the lock's name came from the path
// string. Every name of a segment now meets its identity lock (K-LOCK); a
// refused start leaves no .lock or .takeover beside the name it tried.
TEST(Cli, AnotherNameForALiveDaemonsSegmentDoesNotTakeItOver) {  // issue 30
  test::TempSegmentPath path("clialias");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  KillAtExit guard{d};
  const std::string identity = RecoveryManager::identity_lock_path(path.str());
  ASSERT_FALSE(identity.empty());
  EXPECT_TRUE(std::filesystem::exists(identity)) << identity;
  const auto epoch = [&] {
    auto seg = MmapSegment::open(path.str());
    return seg ? control_of(seg->data())->epoch.load() : 0;
  };
  const std::uint64_t before = epoch();
  const std::string sym = path.str() + ".alias", hard = path.str() + ".hard";
  std::filesystem::create_symlink(path.str(), sym);
  std::filesystem::create_hard_link(path.str(), hard);
  for (const std::string& name : {sym, hard}) {
    const auto r = run_tool("daemon " + name + " --quiet", "timeout 20");
    EXPECT_EQ(r.status, 2) << name << ": a second daemon started\n" << r.out << r.err;
    EXPECT_NE(r.err.find("under another name"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(name + ".lock")) << "the refused start left its lock file";
    EXPECT_FALSE(std::filesystem::exists(name + ".takeover")) << "the refused start left its takeover file";
    const auto c = run_tool("cleanup " + name, "timeout 20");
    EXPECT_EQ(c.status, 2) << name << ": cleanup removed a live daemon's segment\n" << c.out << c.err;
  }
  EXPECT_EQ(epoch(), before) << "the live daemon was fenced";
  EXPECT_TRUE(Client::connect(path.str(), 1).ok());
  EXPECT_EQ(stop(d, SIGINT), 0);
  guard.pid = -1;
  EXPECT_FALSE(std::filesystem::exists(identity)) << "shutdown left the identity lock";
  std::filesystem::remove(sym);
  std::filesystem::remove(hard);
}

// Issue 30, item 12: a start that fails (here: not a segment at the name)
// left <name>.lock and <name>.takeover; the file itself stays untouched.
TEST(Cli, AFailedStartLeavesNoLockOrTakeoverFile) {  // issue 30
  test::TempSegmentPath path("clifailedstart");
  const std::string notes(65536, 'n');
  std::ofstream(path.str()) << notes;
  const auto r = run_tool("daemon " + path.str() + " --quiet", "timeout 20");
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  for (const char* suffix : {".lock", ".takeover", ".pid"})
    EXPECT_FALSE(std::filesystem::exists(path.str() + suffix)) << "the failed start left " << suffix;
  EXPECT_EQ(slurp(path.str()), notes) << "the failed start changed the file";
  EXPECT_TRUE(RecoveryManager::identity_lock_path(path.str()).empty() ||
              !std::filesystem::exists(RecoveryManager::identity_lock_path(path.str())))
      << "the failed start left the identity lock";
}

// Issue 30, item 5: a segment whose epoch was 2^64 - 1, taken over (the new
// daemon then ran at epoch 0, what zeroed pages read) and truncated: the
// daemon never stopped and logged millions of lines. The epoch skips 0 at
// its wrap (K-TAKEOVER), and a lost segment stops the daemon (M-TRUNCATE).
TEST(Cli, ATakeoverAtTheEpochsWrapStillStopsOnATruncation) {  // issue 30
  test::TempSegmentPath path("cliepochwrap");
  const std::string log = path.str() + ".daemon.log";
  const pid_t first = start_small_daemon(path.str(), log);
  ASSERT_GT(first, 0);
  stop(first, SIGKILL);
  {
    const int fd = ::open(path.str().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::uint64_t last = ~std::uint64_t{0};
    ASSERT_EQ(::pwrite(fd, &last, sizeof last, offsetof(ControlRegion, epoch)), 8);
    ::close(fd);
  }
  // Not start_small_daemon: a client connects to the dead daemon's segment
  // before the second daemon has taken it over.
  const pid_t second = spawn_tool({"daemon", path.str(), "--size", "65536"}, log);
  ASSERT_GT(second, 0);
  KillAtExit guard{second};
  std::uint64_t epoch = 0;
  for (int i = 0; i < 1000 && epoch != 1; ++i) {
    std::this_thread::sleep_for(10ms);
    auto seg = MmapSegment::open(path.str());
    const ControlRegion* ctl = seg ? control_of(seg->data()) : nullptr;
    if (ctl != nullptr && ctl->daemon_pid.load() == static_cast<std::uint32_t>(second)) epoch = ctl->epoch.load();
  }
  ASSERT_EQ(epoch, 1u) << "the epoch after 2^64 - 1 is 1, never 0\n" << slurp(log);
  ASSERT_EQ(::truncate(path.str().c_str(), 0), 0);
  const int status = wait_exit(second, 20s);  // reaps it, whatever it did
  guard.pid = -1;
  ASSERT_LT(std::filesystem::file_size(log), 100000u) << "the daemon's log grew without bound";
  EXPECT_EQ(status, 2) << slurp(log);
  EXPECT_NE(slurp(log).find("M-TRUNCATE"), std::string::npos) << slurp(log);
  std::remove(log.c_str());
}

// Issue 30, item 10: inspect --json aborted (an uncaught JSON exception) on
// a path that is not UTF-8; the report now carries it with U+FFFD.
TEST(Cli, InspectJsonOfAPathThatIsNotUtf8IsAReport) {  // issue 30
  const std::string path = "/dev/shm/memlink-test-\xff\xfe-" + std::to_string(::getpid());
  const pid_t d = start_daemon(path);
  ASSERT_GT(d, 0);
  KillAtExit guard{d};
  const auto r = run_tool("inspect --json '" + path + "'");
  EXPECT_EQ(r.status, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << r.out;
  EXPECT_NE(report.value("path", std::string()).find("\xef\xbf\xbd"), std::string::npos) << r.out;
  EXPECT_EQ(stop(d, SIGINT), 0);
  guard.pid = -1;
}

TEST(Cli, CleanupRefusesWhileADaemonIsAlive) {
  test::TempSegmentPath path("clialive");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  auto c = run_tool("cleanup " + path.str());
  EXPECT_EQ(c.status, 2);
  EXPECT_NE(c.err.find("AlreadyExists"), std::string::npos) << c.err;
  EXPECT_TRUE(std::filesystem::exists(path.str()));
  auto second = run_tool("daemon " + path.str());
  EXPECT_EQ(second.status, 2);
  EXPECT_NE(second.err.find("is running"), std::string::npos) << second.err;
  stop(d, SIGTERM);
}

TEST(Cli, InspectAfterAKillShowsTheLeftovers) {
  test::TempSegmentPath path("clikill");
  const pid_t d = start_daemon(path.str());
  ASSERT_GT(d, 0);
  {
    auto c = Client::connect(path.str(), 1);
    ASSERT_TRUE(c.ok());
    stop(d, SIGKILL);  // no shutdown: the segment stays
    ASSERT_TRUE(c->write(Priority::High, std::string_view("left behind")).ok());
    ASSERT_TRUE(c->outbound().ring(Priority::Low).claim().ok());  // a writer that stops in Writing
  }
  auto ins = run_tool("inspect --json " + path.str());
  EXPECT_EQ(ins.status, 0) << ins.err;
  auto report = nlohmann::json::parse(ins.out);
  EXPECT_FALSE(report["control"]["daemon_process_exists"].get<bool>());
  EXPECT_FALSE(report["daemon_lock"]["held"].get<bool>());  // the kernel dropped the dead daemon's lock
  EXPECT_EQ(report["rings"][1]["states"]["Ready"].get<int>(), 1);  // c2d/high
  EXPECT_TRUE(report["rings"][1]["held"].empty());
  ASSERT_EQ(report["rings"][2]["held"].size(), 1u);  // c2d/low
  EXPECT_EQ(report["rings"][2]["held"][0]["state"].get<std::string>(), "Writing");
  EXPECT_EQ(report["rings"][2]["held"][0]["owner_pid"].get<unsigned>(), static_cast<unsigned>(::getpid()));
  auto table = run_tool("inspect " + path.str());
  EXPECT_NE(table.out.find("held slots"), std::string::npos) << table.out;
}

TEST(Cli, InspectRejectsCorruptAndTruncatedSegmentsNamingTheField) {
  test::TempSegmentPath path("clicorrupt");
  {
    DaemonOptions o;
    o.remove_on_shutdown = false;
    ASSERT_TRUE(Daemon::create(path.str(), DEFAULT_SEGMENT_SIZE, 1, o).ok());
  }
  auto good = test::read_file(path.str());
  auto bad_magic = good;
  bad_magic[0] = std::byte{0};
  test::write_file(path.str(), bad_magic);
  auto r = run_tool("inspect " + path.str());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("control.magic"), std::string::npos) << r.err;

  auto truncated = good;
  truncated.resize(good.size() / 2);
  test::write_file(path.str(), truncated);
  r = run_tool("inspect --json " + path.str());
  EXPECT_EQ(r.status, 2);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["error"]["code"].get<std::string>(), "CorruptSegment");
  EXPECT_NE(j["error"]["detail"].get<std::string>().find("truncated"), std::string::npos);

  auto bad_ring = good;
  const std::uint64_t head = 1u << 30;
  std::memcpy(bad_ring.data() + RING_BUFFER_OFFSET + 64, &head, sizeof head);
  test::write_file(path.str(), bad_ring);
  r = run_tool("inspect " + path.str());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("ERROR"), std::string::npos);  // the table still shows the rings
  EXPECT_NE(r.err.find("head/tail"), std::string::npos) << r.err;

  r = run_tool("inspect /dev/shm/memlink-does-not-exist");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("NotFound"), std::string::npos);
}

}  // namespace
}  // namespace memlink::shm
