#include "driver_cluster.hpp"

#include "reference_ops.hpp"

#include <unistd.h>

#include <cstring>

namespace memlink::conformance {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

void scenario_fail(const std::string& clause, const std::string& what) { throw ScenarioFailure{clause, what}; }

Cluster::Cluster(const Params& params, const std::string& tag, Options o)
    : params_(params), path_(driver_segment_path(tag)), options_(o) {
  remove_files();
}

Cluster::~Cluster() {
  clients.clear();
  daemon.reset();
  cleanup_through_driver(params_.driver, path_);
  remove_files();
}

void Cluster::remove_files() { reference_ops::remove_segment_files(path_); }

json Cluster::create_request() const {
  return {{"op", "create"},
          {"segment", path_},
          {"segment_size", options_.segment_size},
          {"slot_size", options_.slot_size},
          {"protocol_version", 1},
          {"heartbeat_ms", options_.heartbeat_ms},
          {"heartbeat_timeout_ms", options_.heartbeat_timeout_ms},
          {"sleep_slice_ms", options_.sleep_slice_ms},
          {"daemon_timeout_ms", options_.daemon_timeout_ms},
          {"stale_after_ms", options_.stale_after_ms},
          {"claim_timeout_ms", options_.claim_timeout_ms}};
}

json Cluster::connect_request() const {
  return {{"op", "connect"},
          {"segment", path_},
          {"protocol_version", 1},
          {"sleep_slice_ms", options_.sleep_slice_ms},
          {"daemon_timeout_ms", options_.daemon_timeout_ms},
          {"stale_after_ms", options_.stale_after_ms},
          {"claim_timeout_ms", options_.claim_timeout_ms}};
}

Reply Cluster::start_daemon(std::unique_ptr<DriverProcess>& out, const std::string& role) {
  out = DriverProcess::start(params_.driver, role);
  Reply r = out->call(create_request(), std::chrono::seconds(20));
  step(role + " (pid " + std::to_string(out->pid()) + "): create -> " +
       (r.ok() ? "ok, " + r.body.value("started", std::string("?")) : r.error().message()));
  return r;
}

DriverProcess& Cluster::add_client(const std::string& role) {
  auto p = DriverProcess::start(params_.driver, role);
  Reply r = p->call(connect_request());
  step(role + " (pid " + std::to_string(p->pid()) + "): connect -> " + (r.ok() ? "ok" : r.error().message()));
  if (!r.ok()) scenario_fail("T-ENDPOINTS", role + " could not connect: " + r.error().message());
  clients.push_back(std::move(p));
  return *clients.back();
}

Reply Cluster::must(DriverProcess& p, json request, const std::string& clause, std::chrono::milliseconds timeout) {
  const std::string op = request.value("op", std::string("?"));
  Reply r = p.call(std::move(request), timeout);
  if (!r.ok()) {
    step(p.role() + ": " + op + " -> " + r.error().message());
    scenario_fail(clause, p.role() + "'s " + op + " failed: " + r.error().message());
  }
  return r;
}

std::vector<std::byte> message_payload(std::uint64_t id, std::size_t length) {
  length = std::max<std::size_t>(length, 8);
  std::vector<std::byte> out(length);
  std::memcpy(out.data(), &id, 8);
  std::uint64_t x = id * 0x9E3779B97F4A7C15ULL + length;
  for (std::size_t i = 8; i < length; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x);
  }
  return out;
}

std::optional<std::uint64_t> message_id(std::span<const std::byte> payload) {
  if (payload.size() < 8) return std::nullopt;
  std::uint64_t id = 0;
  std::memcpy(&id, payload.data(), 8);
  const auto want = message_payload(id, payload.size());
  if (!std::equal(want.begin(), want.end(), payload.begin(), payload.end())) return std::nullopt;
  return id;
}

std::string driver_replay(const Params& params, const std::string& check) {
  return "scripts/conformance --driver '" + params.driver + "' --only " + check + " --seed " + std::to_string(params.seed);
}

Failure failure_of(const ScenarioFailure& f, const std::vector<std::string>& steps, const std::string& replay) {
  Failure out;
  out.clause = f.clause;
  out.description = "[" + f.clause + "] " + f.what;
  out.counterexample = steps;
  out.replay = replay;
  return out;
}

}  // namespace memlink::conformance
