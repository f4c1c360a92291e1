#include "reference_driver.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "driver_json.hpp"
#include "memlink/shm/crash_point.hpp"
#include "memlink/shm/recovery.hpp"
#include "memlink/shm/transport.hpp"
#include "memlink/shm/version.hpp"
#include "reference_ops.hpp"

namespace memlink::conformance::reference_driver {
namespace {

namespace ops = reference_ops;
using namespace driver;
using nlohmann::json;
using namespace std::chrono_literals;

json fail(const shm::Error& e) {
  return {{"ok", false}, {"error", std::string(shm::to_string(e.code))}, {"detail", e.text()}};
}
json fail(shm::ErrorCode c, const std::string& detail) { return fail(shm::make_error(c, detail)); }

// D-ARM's "hold": the thread that reaches the point waits here until the
// process is asked to "release" (its request loop keeps answering).
struct Hold {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  bool holding = false;
};
Hold& hold() {
  static Hold h;
  return h;
}
void hold_here(std::string_view, void*) {
  Hold& h = hold();
  std::unique_lock<std::mutex> lock(h.mu);
  h.holding = true;
  h.cv.wait(lock, [&] { return h.released; });
  h.holding = false;
}
void stop_here(std::string_view, void*) { ::raise(SIGSTOP); }

}  // namespace

// One fault of MEMLINK_DRIVER_FAULT into f; false if it names none.
bool add_fault(Fault& f, const std::string& s) {
  bool known = false;
  auto at = [&](const std::string& prefix, long& out) {
    if (s.rfind(prefix, 0) != 0) return;
    out = std::atol(s.c_str() + prefix.size());
    known = out > 0;
  };
  for (const char* name :
       {"reorder-priorities", "lose-on-kill", "no-wake", "no-fault-guard", "deliver-nothing", "protocol-1"})
    known = known || s == name;
  f.reorder |= s == "reorder-priorities";
  f.lose_on_kill |= s == "lose-on-kill";
  f.no_wake |= s == "no-wake";
  f.no_fault_guard |= s == "no-fault-guard";
  f.deliver_nothing |= s == "deliver-nothing";
  f.protocol1 |= s == "protocol-1";
  at("hang-at:", f.hang_at);
  at("garbage-at:", f.garbage_at);
  at("exit-at:", f.exit_at);
  long min_segment = 0;
  at("min-segment:", min_segment);
  if (min_segment > 0) f.min_segment = static_cast<std::size_t>(min_segment);
  at("string-id-at:", f.string_id_at);
  at("numeric-error-at:", f.numeric_error_at);
  at("invalid-utf8-at:", f.invalid_utf8_at);
  at("cut-utf8-at:", f.cut_utf8_at);
  at("long-line-at:", f.long_line_at);
  at("stderr-flood:", f.stderr_flood_mib);
  return known;
}

// MEMLINK_DRIVER_FAULT: one fault, or several separated by commas.
bool fault_from_env(Fault& f, std::string& error) {
  f = Fault{};
  const char* e = std::getenv("MEMLINK_DRIVER_FAULT");
  if (e == nullptr || *e == '\0') return true;
  std::istringstream all{std::string(e)};
  for (std::string one; std::getline(all, one, ',');)
    if (!add_fault(f, one)) {
      error = "unknown MEMLINK_DRIVER_FAULT '" + one + "'";
      return false;
    }
  return true;
}

struct ReferenceDriver::State {
  Fault fault;
  LineWriter write_line;
  Workload run_workload;
  int protocol = kProtocolVersion;
  std::optional<shm::Daemon> daemon;
  std::optional<shm::Client> client;
  std::string segment;
  std::uint32_t slot_size = 0;
  std::chrono::nanoseconds stale_after = shm::RecoveryPolicy{}.stale_after;
  std::chrono::nanoseconds slice = 100ms;
  std::map<std::uint64_t, shm::MessageInfo> taken;
  std::uint64_t next_token = 1;
  // SPEC T-LOAN: every other write goes through a loan and every other read
  // through a view, unless the suite said the peers are not to be trusted
  // (D-TUNING trusts_peers false: SPEC 9b, a consumer that does not trust
  // its writers copies). Counted from the endpoint's start, so that a
  // replay takes the same paths.
  bool zero_copy = true;
  std::uint64_t writes = 0, reads = 0;
  std::optional<std::pair<shm::Priority, std::vector<std::byte>>> deferred;

  shm::Endpoint& ep() { return daemon ? static_cast<shm::Endpoint&>(*daemon) : *client; }
  bool is_daemon() const { return daemon.has_value(); }

  // no-fault-guard: the mapping exists now, so the library's SIGBUS handler
  // is installed; put the default action back.
  json unguarded(json reply) {
    if (fault.no_fault_guard) std::signal(SIGBUS, SIG_DFL);
    return reply;
  }

  json dispatch(const json& req) {
    const std::string op = req.at("op").get<std::string>();
    if (op != "write" && op != "write_blocking") flush_deferred();
    if (op == "hello") return hello(req);
    if (op == "create") return unguarded(create(req));
    if (op == "connect") return unguarded(connect(req));
    if (op == "cleanup") return cleanup(req);
    if (op == "arm") return arm(req);
    if (op == "release") return release();
    if (op == "reset") return reset();
    if (!daemon && !client) return fail(shm::ErrorCode::InvalidState, "'" + op + "' before create or connect");
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
    if (!deferred) return;
    (void)ep().write(deferred->first, deferred->second);
    deferred.reset();
  }

  // D-HELLO, D-VERSION: protocol 2 where the suite offers it, else 1.
  json hello(const json& req) {
    const int asked = req.value("protocol", 0);
    if (asked != 1 && (asked != 2 || fault.protocol1))
      return fail(shm::ErrorCode::ProtocolMismatch, std::string("this driver speaks protocol ") +
                                                        (fault.protocol1 ? "1" : "1 and 2") + ", not " +
                                                        std::to_string(asked));
    protocol = asked;
    json points = json::array();
    for (auto p : shm::kCrashPoints) points.push_back(std::string(p));
    json caps = {"priorities", "daemon_writes",  "write_blocking", "wait",        "peek",
                 "two_step",   "crash_recovery", "takeover",       "spec_layout", "observe",
                 "stops",      "crash_points",   "backpressure",   "cleanup",     "sequences"};
    if (run_workload) caps.push_back("workload");
    json out{{"ok", true},
             {"protocol", protocol},
             {"name", "memlink-shm reference"},
             {"version", MEMLINK_SHM_VERSION},
             {"crash_points", points}};
    if (protocol >= 2) {
      caps.push_back("reset");
      caps.push_back("pause_points");
      caps.push_back("aged");
      out["limits"] = {{"segment_size",
                        {{"min", std::max(shm::MIN_SEGMENT_SIZE, fault.min_segment)}, {"max", shm::MAX_SEGMENT_SIZE}}},
                       {"slot_size", {{"min", 1}, {"max", shm::MAX_SLOT_SIZE}}}};
    } else {
      out["max_payload"] = shm::MAX_SLOT_SIZE;
    }
    out["capabilities"] = caps;
    return out;
  }

  shm::EndpointOptions endpoint_options(const json& req) {
    zero_copy = req.value("trusts_peers", true);
    writes = reads = 0;
    shm::EndpointOptions o;
    o.wait_strategy = shm::WaitStrategy::Block;
    o.sleep_slice = std::chrono::milliseconds(req.value("sleep_slice_ms", 100));
    slice = o.sleep_slice;
    if (req.contains("daemon_timeout_ms"))
      o.daemon_timeout = std::chrono::milliseconds(req["daemon_timeout_ms"].get<int>());
    if (req.contains("stale_after_ms"))
      o.recovery.stale_after = std::chrono::milliseconds(req["stale_after_ms"].get<int>());
    stale_after = o.recovery.stale_after;
    if (req.contains("claim_timeout_ms"))
      o.recovery.claim_timeout = std::chrono::milliseconds(req["claim_timeout_ms"].get<int>());
    return o;
  }

  json create(const json& req) {
    if (daemon || client) return fail(shm::ErrorCode::InvalidState, "this process already serves an endpoint");
    const auto size = req.at("segment_size").get<std::size_t>();
    if (size < fault.min_segment)
      return fail(shm::ErrorCode::InvalidArgument,
                  "segments under " + std::to_string(fault.min_segment) + " bytes are refused (min-segment fault)");
    shm::DaemonOptions o;
    o.endpoint = endpoint_options(req);
    o.slot_size = req.at("slot_size").get<std::uint32_t>();
    o.remove_on_shutdown = false;  // the segment outlives shutdown so connect can see SHUTDOWN
    o.heartbeat_interval = std::chrono::milliseconds(req.value("heartbeat_ms", 100));
    o.heartbeat_timeout = std::chrono::milliseconds(req.value("heartbeat_timeout_ms", 1000));
    if (req.contains("age")) {
      const auto age = shm::parse_segment_age(req["age"].get<std::string>());
      if (!age) return fail(shm::ErrorCode::InvalidArgument, "unknown age " + req["age"].dump() + " (D-CREATE)");
      o.age = *age;
    }
    slot_size = o.slot_size;
    segment = req.at("segment").get<std::string>();
    auto d = shm::Daemon::create(segment, size, req.at("protocol_version").get<std::uint16_t>(), o);
    if (!d) return fail(d.error());
    daemon.emplace(std::move(d.value()));
    const auto& info = daemon->start_info();
    json capacity = json::array();
    for (auto p : shm::kAllPriorities) capacity.push_back(daemon->inbound().ring(p).capacity());
    return {{"ok", true},
            {"epoch", info.epoch},
            {"started", info.kind == shm::DaemonStart::Fresh ? "fresh" : "takeover"},
            {"capacity", capacity},
            {"slot_size", slot_size}};
  }

  json connect(const json& req) {
    if (daemon || client) return fail(shm::ErrorCode::InvalidState, "this process already serves an endpoint");
    segment = req.at("segment").get<std::string>();
    auto c = shm::Client::connect(segment, req.at("protocol_version").get<std::uint16_t>(), endpoint_options(req));
    if (!c) return fail(c.error());
    client.emplace(std::move(c.value()));
    slot_size = client->geometry().slot_size;
    return {{"ok", true}};
  }

  json disconnect() {
    if (!client) return fail(shm::ErrorCode::InvalidState, "only a client disconnects");
    client->shutdown();
    client.reset();
    taken.clear();
    return {{"ok", true}};
  }

  // D-RESET: the endpoint ends as it would if the process exited now (the
  // daemon without shutdown), and the process is as new after hello.
  json reset() {
    deferred.reset();
    taken.clear();
    client.reset();
    daemon.reset();
    segment.clear();
    slot_size = 0;
    return {{"ok", true}};
  }

  json cleanup(const json& req) {
    auto s = shm::RecoveryManager(req.at("segment").get<std::string>()).cleanup_orphaned_shm();
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  // D-ARM: crash (SIGKILL itself), stop (the whole process, SIGSTOP) or
  // hold (only the thread that gets there, until "release").
  json arm(const json& req) {
    const std::string point = req.at("point").get<std::string>();
    const long occurrence = req.value("occurrence", 1L);
    const std::string action = req.value("action", std::string("crash"));
    if (action == "crash") {
      shm::arm_crash_point(point, occurrence);
    } else if (action == "stop") {
      shm::arm_pause_point(point, occurrence, stop_here, nullptr);
    } else if (action == "hold") {
      {
        std::lock_guard<std::mutex> lock(hold().mu);
        hold().released = false;
      }
      shm::arm_pause_point(point, occurrence, hold_here, nullptr);
    } else {
      return fail(shm::ErrorCode::InvalidArgument, "action must be crash, stop or hold, not '" + action + "'");
    }
    return {{"ok", true}};
  }

  json release() {
    Hold& h = hold();
    std::lock_guard<std::mutex> lock(h.mu);
    const bool was = h.holding;
    h.released = true;
    h.cv.notify_all();
    return {{"ok", true}, {"was_holding", was}};
  }

  static std::optional<std::vector<std::byte>> data_of(const json& req) {
    return from_hex(req.value("data", std::string()));
  }

  json write(const json& req, bool blocking) {
    const int pn = req.at("priority").get<int>();
    if (pn < 0 || pn > 2) return fail(shm::ErrorCode::InvalidArgument, "priority must be 0, 1 or 2");
    const auto p = static_cast<shm::Priority>(pn);
    const auto data = data_of(req);
    if (!data) return fail(shm::ErrorCode::InvalidArgument, "data is not hex");
    if ((fault.lose_on_kill || fault.deliver_nothing) && !blocking) return write_unfaithfully(p, *data);
    if (!blocking && zero_copy && (writes++ & 1) != 0) {
      auto s = ops::write_by_loan(ep(), p, *data, slot_size);
      if (!s) return fail(s.error());
      return {{"ok", true}, {"sequence", *s}};
    }
    auto r = blocking ? ep().write_blocking(p, *data, std::chrono::milliseconds(req.at("timeout_ms").get<int>()))
                      : ep().write(p, *data);
    if (!r) return fail(r.error());
    const std::uint64_t sequence = ep().outbound().ring(p).slot_header(r->index).sequence;
    return {{"ok", true}, {"sequence", sequence}, {"position", r->position}};
  }

  // lose-on-kill acknowledges now and writes at the next request;
  // deliver-nothing acknowledges and never writes.
  json write_unfaithfully(shm::Priority p, const std::vector<std::byte>& data) {
    flush_deferred();
    if (data.size() > slot_size) return fail(shm::ErrorCode::MessageTooLarge, "payload larger than the slot");
    const std::uint64_t seq = ep().outbound().ring(p).head();  // a guess; the fault is about loss
    if (fault.lose_on_kill) deferred.emplace(p, data);
    return {{"ok", true}, {"sequence", seq}};
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
    if (!two_step && !fault.reorder && zero_copy && (reads++ & 1) != 0) {
      auto m = ops::read_by_view(ep());
      if (!m) return fail(m.error());
      return {{"ok", true},
              {"priority", static_cast<int>(m->priority)},
              {"sequence", m->sequence},
              {"data", to_hex(m->payload)}};
    }
    std::vector<std::byte> buf(slot_size);
    auto r = fault.reorder ? take_reordered(buf) : two_step ? ep().take(buf) : ep().read(buf);
    if (!r) return fail(r.error());
    json out{{"ok", true},
             {"priority", static_cast<int>(r->priority)},
             {"sequence", r->sequence},
             {"position", r->slot.position},
             {"data", to_hex({buf.data(), r->length})}};
    if (two_step && !fault.reorder) {
      const std::uint64_t token = next_token++;
      taken[token] = *r;
      out["token"] = token;
    } else if (two_step) {
      out["token"] = 0;  // read_slot already finished it
    }
    return out;
  }

  json finish(const json& req) {
    const auto token = req.at("token").get<std::uint64_t>();
    if (fault.reorder && token == 0) return {{"ok", true}};
    const auto it = taken.find(token);
    if (it == taken.end())
      return fail(shm::ErrorCode::InvalidArgument, "no message taken with token " + std::to_string(token));
    auto s = ep().finish(it->second);
    taken.erase(it);
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  json peek() {
    auto r = ep().peek();
    if (!r) return fail(r.error());
    return {
        {"ok", true}, {"priority", static_cast<int>(r->priority)}, {"sequence", r->sequence}, {"length", r->length}};
  }

  json wait(const json& req) {
    const auto timeout = std::chrono::milliseconds(req.at("timeout_ms").get<int>());
    if (fault.no_wake) return wait_without_futex(timeout);
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
      std::this_thread::sleep_for(
          std::min<std::chrono::nanoseconds>(slice, deadline - std::chrono::steady_clock::now()));
    }
  }

  json shutdown() {
    if (!daemon) return fail(shm::ErrorCode::InvalidState, "only the daemon shuts down");
    daemon->shutdown();
    return {{"ok", true}};
  }

  json set_backpressure(const json& req) {
    if (!daemon) return fail(shm::ErrorCode::InvalidState, "only the daemon sets backpressure");
    auto s = daemon->set_backpressure(req.at("permille").get<std::uint32_t>());
    if (!s) return fail(s.error());
    return {{"ok", true}};
  }

  json stop_writer(const json& req) {
    const auto data = data_of(req);
    if (!data) return fail(shm::ErrorCode::InvalidArgument, "data is not hex");
    const auto where =
        req.at("where").get<std::string>() == "claim" ? model::WriterStop::AfterClaim : model::WriterStop::AfterFill;
    auto r = ops::stop_writer(ep(), static_cast<shm::Priority>(req.at("priority").get<int>()), where, *data);
    if (!r) return fail(r.error());
    return {{"ok", true}, {"sequence", *r}};
  }

  json stop_reader(const json& req) {
    const auto where =
        req.at("where").get<std::string>() == "take" ? model::ReaderStop::AfterTake : model::ReaderStop::AfterComplete;
    auto r = ops::stop_reader(ep(), where, slot_size);
    if (!r) return fail(r.error());
    return {{"ok", true},
            {"priority", static_cast<int>(r->priority)},
            {"sequence", r->sequence},
            {"data", to_hex(r->payload)}};
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
      std::this_thread::sleep_for(stale_after + std::chrono::milliseconds(1));
      waited = true;
    }
    return {{"ok", true}};
  }

  json corrupt(const json& req) {
    const auto d = direction_from_name(req.at("direction").get<std::string>());
    const auto what = corruption_from_name(req.at("what").get<std::string>());
    if (!d || !what) return fail(shm::ErrorCode::InvalidArgument, "unknown direction or corruption");
    ops::corrupt_oldest(ops::ring_of(ep(), is_daemon(), *d, static_cast<shm::Priority>(req.at("priority").get<int>())),
                        *what);
    return {{"ok", true}};
  }

  // D-WORKLOAD: the chaos runner's process bodies on this endpoint.
  json workload(const json& req) {
    if (!run_workload) return fail(shm::ErrorCode::Unsupported, "this driver runs no workload");
    WorkloadContext ctx;
    ctx.daemon = daemon ? &*daemon : nullptr;
    ctx.client = client ? &*client : nullptr;
    ctx.segment = segment;
    ctx.slot_size = slot_size;
    return run_workload(ctx, req, write_line);
  }
};

ReferenceDriver::ReferenceDriver(Fault fault, LineWriter write_line, Workload workload)
    : s_(std::make_unique<State>()) {
  s_->fault = fault;
  s_->write_line = std::move(write_line);
  s_->run_workload = std::move(workload);
}

ReferenceDriver::~ReferenceDriver() = default;

json ReferenceDriver::handle(const json& request) {
  try {
    if (request.contains("sleep_slice_ms")) s_->slice = std::chrono::milliseconds(request["sleep_slice_ms"].get<int>());
    return s_->dispatch(request);
  } catch (const json::exception& e) {
    return fail(shm::ErrorCode::InvalidArgument, std::string("malformed request: ") + e.what());
  }
}

void ReferenceDriver::flush_deferred() { s_->flush_deferred(); }

namespace {

void write_all(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(0);  // the suite is gone
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

// The faults that break an answer's frame (D-FRAME, D-ERRORS) rather than
// the transport: true if the N-th answer was one of them.
bool answer_broken(int out_fd, const Fault& fault, long n, const json& req) {
  const json id = req.is_object() ? req.value("id", json(-1)) : json(-1);
  if (fault.string_id_at == n) {
    write_all(out_fd, json{{"id", id.dump()}, {"ok", true}}.dump() + "\n");
  } else if (fault.numeric_error_at == n) {
    write_all(out_fd, json{{"id", id}, {"ok", false}, {"error", 5}, {"detail", "error code 5"}}.dump() + "\n");
  } else if (fault.invalid_utf8_at == n) {
    write_all(out_fd, "{\"id\":" + id.dump() + ",\"ok\":true,\"detail\":\"\xff\xfe\xc3\"}\n");
  } else if (fault.cut_utf8_at == n) {
    write_all(out_fd, std::string(299, 'x') + "\xc3\xa9 and more, not JSON\n");
  } else if (fault.long_line_at == n) {
    const std::string mib(std::size_t{1} << 20, 'x');
    for (int i = 0; i < 48; ++i) write_all(out_fd, mib);
    write_all(out_fd, "\n");
  } else {
    return false;
  }
  return true;
}

// stderr-flood: a driver that logs far more than anyone reads.
void flood_stderr(long mib) {
  const std::string chunk(std::size_t{1} << 20, 'E');
  for (long i = 0; i < mib; ++i) write_all(2, chunk);
}

int serve_lines(int in_fd, int out_fd, const Fault& fault, const Workload& workload) {
  flood_stderr(fault.stderr_flood_mib);
  ReferenceDriver driver(
      fault, [out_fd](const std::string& line) { write_all(out_fd, line + "\n"); }, workload);
  std::string buffer;
  long n = 0;
  char chunk[65536];
  for (;;) {
    const std::size_t nl = buffer.find('\n');
    if (nl == std::string::npos) {
      const ssize_t got = ::read(in_fd, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(got));
      continue;
    }
    const std::string line = buffer.substr(0, nl);
    buffer.erase(0, nl + 1);
    ++n;
    json req, resp;
    try {
      req = json::parse(line);
    } catch (const json::exception& e) {
      write_all(
          out_fd,
          json{
              {"id", -1}, {"ok", false}, {"error", "InvalidArgument"}, {"detail", std::string("not JSON: ") + e.what()}}
                  .dump() +
              "\n");
      continue;
    }
    if (fault.exit_at == n) std::_Exit(1);
    if (fault.hang_at == n)
      for (;;) std::this_thread::sleep_for(1h);
    if (fault.garbage_at == n) {
      write_all(out_fd, "this is not JSON\n");
      continue;
    }
    if (answer_broken(out_fd, fault, n, req)) continue;
    resp = req.is_object() && req.contains("op")
               ? driver.handle(req)
               : fail(shm::ErrorCode::InvalidArgument, "a request is an object with \"op\"");
    resp["id"] = req.is_object() ? req.value("id", json(-1)) : json(-1);
    write_all(out_fd, resp.dump() + "\n");
  }
  driver.flush_deferred();
  return 0;
}

}  // namespace memlink::conformance::reference_driver
