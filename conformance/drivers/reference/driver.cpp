// memlink-shm-driver: the reference transport through the driver protocol
// (conformance/DRIVER.md). One process serves one endpoint: a shm::Daemon
// after "create", a shm::Client after "connect". Built on the test library
// (memlink_shm_testing), so its crash points are live (D-ARM).
//
// Deliberately broken variants, for the suite's own tests (each must be
// caught, naming the clause), chosen with MEMLINK_DRIVER_FAULT:
//   reorder-priorities  read/take serve low before high before critical (R-ORDER)
//   lose-on-kill        a write is acknowledged at once but written only at
//                       the next request; a kill in between loses it (K-STALE)
//   no-wake             wait never sleeps on the futex: it looks again only
//                       when a sleep slice expires (F-WAKE, T-WAIT)
//   hang-at:N           the N-th request is never answered (D-TIME)
//   garbage-at:N        the N-th request is answered with a line that is not JSON (D-FRAME)
//   exit-at:N           the process exits at the N-th request (D-PROC)
//   no-fault-guard      SIGBUS back to its default action once the segment is
//                       mapped, as in a transport without M-TRUNCATE's guard
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "../../driver_json.hpp"
#include "../../reference_ops.hpp"
#include "chaos/processes.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/transport.hpp"
#include "memlink/shm/version.hpp"

namespace {

namespace shm = memlink::shm;
namespace model = memlink::model;
namespace ops = memlink::conformance::reference_ops;
using namespace memlink::conformance::driver;
using nlohmann::json;
using namespace std::chrono_literals;

struct Fault {
  bool reorder = false, lose_on_kill = false, no_wake = false, no_fault_guard = false;
  long hang_at = 0, garbage_at = 0, exit_at = 0;
};

Fault fault_from_env() {
  Fault f;
  const char* e = std::getenv("MEMLINK_DRIVER_FAULT");
  if (e == nullptr) return f;
  const std::string s = e;
  auto at = [&](const std::string& prefix) { return s.rfind(prefix, 0) == 0 ? std::atol(s.c_str() + prefix.size()) : 0; };
  f.reorder = s == "reorder-priorities";
  f.lose_on_kill = s == "lose-on-kill";
  f.no_wake = s == "no-wake";
  f.no_fault_guard = s == "no-fault-guard";
  f.hang_at = at("hang-at:");
  f.garbage_at = at("garbage-at:");
  f.exit_at = at("exit-at:");
  if (!f.reorder && !f.lose_on_kill && !f.no_wake && !f.no_fault_guard && !f.hang_at && !f.garbage_at && !f.exit_at) {
    std::fprintf(stderr, "memlink-shm-driver: unknown MEMLINK_DRIVER_FAULT '%s'\n", e);
    std::exit(2);
  }
  return f;
}

json fail(const shm::Error& e) {
  return {{"ok", false}, {"error", std::string(shm::to_string(e.code))}, {"detail", e.text()}};
}
json fail(shm::ErrorCode c, const std::string& detail) { return fail(shm::make_error(c, detail)); }

class Driver {
 public:
  explicit Driver(Fault f) : fault_(f) {}

  // no-fault-guard: the mapping exists now, so the library's SIGBUS handler
  // is installed; put the default action back.
  json unguarded(json reply) {
    if (fault_.no_fault_guard) std::signal(SIGBUS, SIG_DFL);
    return reply;
  }

  json handle(const json& req) {
    const std::string op = req.at("op").get<std::string>();
    if (op != "write" && op != "write_blocking") flush_deferred();
    if (op == "hello") return hello(req);
    if (op == "create") return unguarded(create(req));
    if (op == "connect") return unguarded(connect(req));
    if (op == "cleanup") return cleanup(req);
    if (op == "arm") return arm(req);
    if (!daemon_ && !client_) return fail(shm::ErrorCode::InvalidState, "'" + op + "' before create or connect");
    if (op == "disconnect") return disconnect();
    if (op == "write" || op == "write_blocking") return write(req, op == "write_blocking");
    if (op == "read") return read(false);
    if (op == "take") return read(true);
    if (op == "finish") return finish(req);
    if (op == "peek") return peek();
    if (op == "wait") return wait(req);
    if (op == "shutdown") return shutdown();
    if (op == "set_backpressure") return set_backpressure(req);
    if (op == "observe") return {{"ok", true}, {"view", view_to_json(ops::observe(ep(), is_daemon()))}};
    if (op == "stop_writer") return stop_writer(req);
    if (op == "stop_reader") return stop_reader(req);
    if (op == "recover") return recover();
    if (op == "corrupt") return corrupt(req);
    if (op == "workload") return workload(req);
    return fail(shm::ErrorCode::Unsupported, "unknown op '" + op + "'");
  }

  // lose-on-kill: the write acknowledged last, not yet done.
  void flush_deferred() {
    if (!deferred_) return;
    (void)ep().write(deferred_->first, deferred_->second);
    deferred_.reset();
  }

 private:
  shm::Endpoint& ep() { return daemon_ ? static_cast<shm::Endpoint&>(*daemon_) : *client_; }
  bool is_daemon() const { return daemon_.has_value(); }

  json hello(const json& req) {
    if (req.value("protocol", 0) != kProtocolVersion)
      return fail(shm::ErrorCode::ProtocolMismatch, "this driver speaks protocol 1");
    json points = json::array();
    for (auto p : shm::kCrashPoints) points.push_back(std::string(p));
    return {{"ok", true},
            {"protocol", kProtocolVersion},
            {"name", "memlink-shm reference"},
            {"version", "0.1.0"},
            {"capabilities",
             {"priorities", "daemon_writes", "write_blocking", "wait", "peek", "two_step", "crash_recovery", "takeover",
              "spec_layout", "observe", "stops", "crash_points", "backpressure", "cleanup", "sequences", "workload"}},
            {"crash_points", points},
            {"max_payload", shm::MAX_SLOT_SIZE}};
  }

  shm::EndpointOptions endpoint_options(const json& req) {
    shm::EndpointOptions o;
    o.wait_strategy = shm::WaitStrategy::Block;
    o.sleep_slice = std::chrono::milliseconds(req.value("sleep_slice_ms", 100));
    if (req.contains("daemon_timeout_ms")) o.daemon_timeout = std::chrono::milliseconds(req["daemon_timeout_ms"].get<int>());
    if (req.contains("stale_after_ms")) o.recovery.stale_after = std::chrono::milliseconds(req["stale_after_ms"].get<int>());
    stale_after_ = o.recovery.stale_after;
    if (req.contains("claim_timeout_ms")) o.recovery.claim_timeout = std::chrono::milliseconds(req["claim_timeout_ms"].get<int>());
    return o;
  }

  json create(const json& req) {
    if (daemon_ || client_) return fail(shm::ErrorCode::InvalidState, "this process already serves an endpoint");
    shm::DaemonOptions o;
    o.endpoint = endpoint_options(req);
    o.slot_size = req.at("slot_size").get<std::uint32_t>();
    o.remove_on_shutdown = false;  // the segment outlives shutdown so connect can see SHUTDOWN
    o.heartbeat_interval = std::chrono::milliseconds(req.value("heartbeat_ms", 100));
    o.heartbeat_timeout = std::chrono::milliseconds(req.value("heartbeat_timeout_ms", 1000));
    slot_size_ = o.slot_size;
    segment_ = req.at("segment").get<std::string>();
    auto d = shm::Daemon::create(segment_, req.at("segment_size").get<std::size_t>(),
                                 req.at("protocol_version").get<std::uint16_t>(), o);
    if (!d) return fail(d.error());
    daemon_.emplace(std::move(d.value()));
    const auto& info = daemon_->start_info();
    json capacity = json::array();
    for (auto p : shm::kAllPriorities) capacity.push_back(daemon_->inbound().ring(p).capacity());
    return {{"ok", true},
            {"epoch", info.epoch},
            {"started", info.kind == shm::DaemonStart::Fresh ? "fresh" : "takeover"},
            {"capacity", capacity}};
  }

  json connect(const json& req) {
    if (daemon_ || client_) return fail(shm::ErrorCode::InvalidState, "this process already serves an endpoint");
    segment_ = req.at("segment").get<std::string>();
    auto c = shm::Client::connect(segment_, req.at("protocol_version").get<std::uint16_t>(), endpoint_options(req));
    if (!c) return fail(c.error());
    client_.emplace(std::move(c.value()));
    slot_size_ = client_->geometry().slot_size;
    return {{"ok", true}};
  }

  json disconnect() {
    if (!client_) return fail(shm::ErrorCode::InvalidState, "only a client disconnects");
    client_->shutdown();
    client_.reset();
    return {{"ok", true}};
  }

  json cleanup(const json& req) {
    auto s = shm::RecoveryManager(req.at("segment").get<std::string>()).cleanup_orphaned_shm();
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  json arm(const json& req) {
    shm::arm_crash_point(req.at("point").get<std::string>(), req.value("occurrence", 1L));
    return {{"ok", true}};
  }

  static std::optional<std::vector<std::byte>> data_of(const json& req) { return from_hex(req.value("data", std::string())); }

  json write(const json& req, bool blocking) {
    const int pn = req.at("priority").get<int>();
    if (pn < 0 || pn > 2) return fail(shm::ErrorCode::InvalidArgument, "priority must be 0, 1 or 2");
    const auto p = static_cast<shm::Priority>(pn);
    const auto data = data_of(req);
    if (!data) return fail(shm::ErrorCode::InvalidArgument, "data is not hex");
    if (fault_.lose_on_kill && !blocking) {
      flush_deferred();
      if (data->size() > slot_size_) return fail(shm::ErrorCode::MessageTooLarge, "payload larger than the slot");
      const std::uint64_t seq = ep().outbound().ring(p).head();  // a guess; the fault is about loss
      deferred_.emplace(p, *data);
      return {{"ok", true}, {"sequence", seq}};
    }
    auto r = blocking ? ep().write_blocking(p, *data, std::chrono::milliseconds(req.at("timeout_ms").get<int>()))
                      : ep().write(p, *data);
    if (!r) return fail(r.error());
    const std::uint64_t sequence = ep().outbound().ring(p).slot_header(r->index).sequence;
    return {{"ok", true}, {"sequence", sequence}, {"position", r->position}};
  }

  // reorder-priorities: what a transport that serves its rings in the wrong order delivers.
  shm::Result<shm::MessageInfo> take_reordered(std::span<std::byte> buf) {
    for (shm::Priority p : {shm::Priority::Low, shm::Priority::High, shm::Priority::Critical}) {
      auto r = ep().inbound().ring(p).read_slot(buf);
      if (!r && r.code() == shm::ErrorCode::Empty) continue;
      if (r && is_daemon()) ep().control().daemon_tail.fetch_add(1);  // T-COUNTERS, as read() does
      return r;
    }
    return shm::make_error(shm::ErrorCode::Empty, "no message");
  }

  json read(bool two_step) {
    std::vector<std::byte> buf(slot_size_);
    auto r = fault_.reorder ? take_reordered(buf) : two_step ? ep().take(buf) : ep().read(buf);
    if (!r) return fail(r.error());
    json out{{"ok", true},
             {"priority", static_cast<int>(r->priority)},
             {"sequence", r->sequence},
             {"position", r->slot.position},
             {"data", to_hex({buf.data(), r->length})}};
    if (two_step && !fault_.reorder) {
      const std::uint64_t token = next_token_++;
      taken_[token] = *r;
      out["token"] = token;
    } else if (two_step) {
      out["token"] = 0;  // read_slot already finished it
    }
    return out;
  }

  json finish(const json& req) {
    const auto token = req.at("token").get<std::uint64_t>();
    if (fault_.reorder && token == 0) return {{"ok", true}};
    const auto it = taken_.find(token);
    if (it == taken_.end()) return fail(shm::ErrorCode::InvalidArgument, "no message taken with token " + std::to_string(token));
    auto s = ep().finish(it->second);
    taken_.erase(it);
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  json peek() {
    auto r = ep().peek();
    if (!r) return fail(r.error());
    return {{"ok", true}, {"priority", static_cast<int>(r->priority)}, {"sequence", r->sequence}, {"length", r->length}};
  }

  json wait(const json& req) {
    const auto timeout = std::chrono::milliseconds(req.at("timeout_ms").get<int>());
    if (fault_.no_wake) return wait_without_futex(timeout);
    auto s = ep().wait(timeout);
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  // no-wake: looks for a message only when a slice (the endpoint's sleep
  // slice) expires, so a wake-up never ends a sleep early.
  json wait_without_futex(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (ep().peek().ok()) return {{"ok", true}};
      if (std::chrono::steady_clock::now() >= deadline) return fail(shm::ErrorCode::Timeout, "no message");
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(slice_, deadline - std::chrono::steady_clock::now()));
    }
  }

  json shutdown() {
    if (!daemon_) return fail(shm::ErrorCode::InvalidState, "only the daemon shuts down");
    daemon_->shutdown();
    return {{"ok", true}};
  }

  json set_backpressure(const json& req) {
    if (!daemon_) return fail(shm::ErrorCode::InvalidState, "only the daemon sets backpressure");
    auto s = daemon_->set_backpressure(req.at("permille").get<std::uint32_t>());
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  json stop_writer(const json& req) {
    const auto data = data_of(req);
    if (!data) return fail(shm::ErrorCode::InvalidArgument, "data is not hex");
    const auto where = req.at("where").get<std::string>() == "claim" ? model::WriterStop::AfterClaim : model::WriterStop::AfterFill;
    auto r = ops::stop_writer(ep(), static_cast<shm::Priority>(req.at("priority").get<int>()), where, *data);
    if (!r) return fail(r.error());
    return {{"ok", true}, {"sequence", *r}};
  }

  json stop_reader(const json& req) {
    const auto where = req.at("where").get<std::string>() == "take" ? model::ReaderStop::AfterTake : model::ReaderStop::AfterComplete;
    auto r = ops::stop_reader(ep(), where, slot_size_);
    if (!r) return fail(r.error());
    return {{"ok", true}, {"priority", static_cast<int>(r->priority)}, {"sequence", r->sequence}, {"data", to_hex(r->payload)}};
  }

  json recover() {
    ops::kill_stopped(ep().inbound());
    // A consumer judges a held slot after seeing its word unchanged for
    // stale_after on its own clock (SPEC K-STALE): look, wait that long,
    // look again, until a look after the wait moves nothing.
    bool waited = false;
    for (int pass = 0; pass < 4096; ++pass) {
      if (ep().recover_inbound().total() > 0) {
        waited = false;
        continue;
      }
      if (waited) break;
      std::this_thread::sleep_for(stale_after_ + std::chrono::milliseconds(1));
      waited = true;
    }
    return {{"ok", true}};
  }

  json corrupt(const json& req) {
    const auto d = direction_from_name(req.at("direction").get<std::string>());
    const auto what = corruption_from_name(req.at("what").get<std::string>());
    if (!d || !what) return fail(shm::ErrorCode::InvalidArgument, "unknown direction or corruption");
    ops::corrupt_oldest(ops::ring_of(ep(), is_daemon(), *d, static_cast<shm::Priority>(req.at("priority").get<int>())), *what);
    return {{"ok", true}};
  }

  // D-WORKLOAD: the chaos runner's process bodies on this endpoint.
  json workload(const json& req) {
    memlink::chaos::ProcessConfig c;
    c.segment = segment_;
    c.slot_size = req.value("slot_size", slot_size_);
    c.rate = req.value("rate", 1000u);
    c.seed = req.value("seed", std::uint64_t{0});
    const std::string role = req.at("role").get<std::string>();
    const int fd = ::open(req.at("log").get<std::string>().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return fail(shm::ErrorCode::IoError, "cannot open the log: " + std::string(std::strerror(errno)));
    if ((role == "daemon") != is_daemon() || (role != "daemon" && role != "writer" && role != "reader"))
      return fail(shm::ErrorCode::InvalidState, "role '" + role + "' does not fit this endpoint");
    memlink::chaos::stop_on_sigterm();
    std::cout << json{{"id", req.at("id")}, {"ok", true}}.dump() << std::endl;
    if (role == "daemon") memlink::chaos::serve_as_daemon(*daemon_, c, fd);
    if (role == "writer") memlink::chaos::write_as_client(*client_, c, fd, req.value("writer", 1u));
    memlink::chaos::read_as_client(*client_, c, fd);
  }

 public:
  std::chrono::nanoseconds slice_ = 100ms;

 private:
  Fault fault_;
  std::optional<shm::Daemon> daemon_;
  std::optional<shm::Client> client_;
  std::string segment_;
  std::uint32_t slot_size_ = 0;
  std::chrono::nanoseconds stale_after_ = shm::RecoveryPolicy{}.stale_after;
  std::map<std::uint64_t, shm::MessageInfo> taken_;
  std::uint64_t next_token_ = 1;
  std::optional<std::pair<shm::Priority, std::vector<std::byte>>> deferred_;
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "memlink-shm-driver: the memlink-shm reference transport as a conformance driver.\n"
          "Speaks conformance/DRIVER.md (protocol 1) on stdin/stdout: one JSON request per line in,\n"
          "one JSON response per line out. Started by memlink-conformance --driver and memlink-chaos --driver.\n\n"
          "  --help      this text\n  --version   the version\n\n"
          "MEMLINK_DRIVER_FAULT=reorder-priorities|lose-on-kill|no-wake|no-fault-guard|hang-at:N|garbage-at:N|exit-at:N\n"
          "breaks it on purpose (for the suite's own tests).\n");
      return 0;
    }
    if (a == "--version" || a == "-V") {
      std::printf("memlink-shm-driver %s (driver protocol %d)\n", MEMLINK_SHM_VERSION, kProtocolVersion);
      return 0;
    }
    std::fprintf(stderr, "memlink-shm-driver: unknown argument '%s' (see --help)\n", a.c_str());
    return 2;
  }
  const Fault fault = fault_from_env();
  Driver driver(fault);
  std::string line;
  long n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    json req, resp;
    try {
      req = json::parse(line);
    } catch (const json::exception& e) {
      std::cout << json{{"id", -1}, {"ok", false}, {"error", "InvalidArgument"}, {"detail", std::string("not JSON: ") + e.what()}}.dump() << std::endl;
      continue;
    }
    if (fault.exit_at == n) std::_Exit(1);
    if (fault.hang_at == n) for (;;) std::this_thread::sleep_for(1h);
    if (fault.garbage_at == n) {
      std::cout << "this is not JSON" << std::endl;
      continue;
    }
    try {
      if (req.contains("sleep_slice_ms")) driver.slice_ = std::chrono::milliseconds(req["sleep_slice_ms"].get<int>());
      resp = driver.handle(req);
    } catch (const json::exception& e) {
      resp = fail(shm::ErrorCode::InvalidArgument, std::string("malformed request: ") + e.what());
    }
    resp["id"] = req.value("id", json(-1));
    std::cout << resp.dump() << std::endl;
  }
  driver.flush_deferred();
  return 0;
}
