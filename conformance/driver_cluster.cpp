#include "driver_cluster.hpp"

#include <unistd.h>

#include <cstring>
#include <thread>

#include "drivers/reference/reference_ops.hpp"

namespace memlink::conformance {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;

void scenario_fail(Citation clause, std::string what) { throw ScenarioFailure{Violation{clause, std::move(what)}}; }

Cluster::Cluster(const Params& params, const std::string& tag, Options o)
    : params_(params), launcher_(launcher_for(params)), path_(driver_segment_path(tag)), options_(o) {
  if (!launcher_) throw driver::DriverFailure("no driver reaches adapter '" + params.adapter + "'");
  options_.segment_size = params.limits.segment(options_.segment_size);
  options_.slot_size = params.limits.slot(options_.slot_size);
  remove_files();
}

Cluster::~Cluster() {
  for (auto& c : clients) launcher_->give_back(std::move(c));
  for (auto& p : others_) launcher_->give_back(std::move(p));
  launcher_->give_back(std::move(daemon));
  cleanup_through(*launcher_, path_);
  remove_files();
}

void Cluster::remove_files() { reference_ops::remove_segment_files(path_); }

std::unique_ptr<DriverProcess> Cluster::start_owned(const std::string& role, Placement placement) {
  if (!launcher_->can_place(placement))
    throw ScenarioUnavailable{role + " must be a process of its own, which " + launcher_->name() +
                              " cannot start in this build (ThreadSanitizer)"};
  return launcher_->start(role, placement);
}

DriverProcess& Cluster::start(const std::string& role, Placement placement) {
  others_.push_back(start_owned(role, placement));
  return *others_.back();
}

void Cluster::give_back(std::unique_ptr<DriverProcess> p) { launcher_->give_back(std::move(p)); }

json Cluster::create_request() const {
  json r = {{"op", "create"},
            {"segment", path_},
            {"segment_size", options_.segment_size},
            {"slot_size", options_.slot_size},
            {"protocol_version", 1},
            {"heartbeat_ms", options_.heartbeat_ms},
            {"heartbeat_timeout_ms", options_.heartbeat_timeout_ms},
            {"sleep_slice_ms", options_.sleep_slice_ms},
            {"daemon_timeout_ms", options_.daemon_timeout_ms},
            {"stale_after_ms", options_.stale_after_ms},
            {"claim_timeout_ms", options_.claim_timeout_ms},
            {"trusts_peers", options_.trusts_peers}};
  if (options_.age != shm::SegmentAge::Fresh) r["age"] = shm::to_string(options_.age);
  return r;
}

json Cluster::connect_request() const {
  return {{"op", "connect"},
          {"segment", path_},
          {"protocol_version", 1},
          {"sleep_slice_ms", options_.sleep_slice_ms},
          {"daemon_timeout_ms", options_.daemon_timeout_ms},
          {"stale_after_ms", options_.stale_after_ms},
          {"claim_timeout_ms", options_.claim_timeout_ms},
          {"trusts_peers", options_.trusts_peers}};
}

Reply Cluster::start_daemon(std::unique_ptr<DriverProcess>& out, const std::string& role, Placement placement) {
  if (out) launcher_->give_back(std::move(out));
  out = start_owned(role, placement);
  Reply r = create_fitted(*out, create_request(), params_);
  step(role + " (pid " + std::to_string(out->pid()) + "): create -> " +
       (r.ok() ? "ok, " + r.body.value("started", std::string("?")) : r.error().message()));
  return r;
}

DriverProcess& Cluster::add_client(const std::string& role, Placement placement) {
  auto p = start_owned(role, placement);
  Reply r = p->call(connect_request());
  step(role + " (pid " + std::to_string(p->pid()) + "): connect -> " + (r.ok() ? "ok" : r.error().message()));
  if (!r.ok()) {
    launcher_->give_back(std::move(p));
    scenario_fail(ClauseId::T_ENDPOINTS, role + " could not connect: " + r.error().message());
  }
  clients.push_back(std::move(p));
  return *clients.back();
}

Reply Cluster::must(DriverProcess& p, json request, ClauseId clause, std::chrono::milliseconds timeout) {
  const std::string op = request.value("op", std::string("?"));
  Reply r = p.call(std::move(request), timeout);
  if (!r.ok()) {
    step(p.role() + ": " + op + " -> " + r.error().message());
    scenario_fail(clause, p.role() + "'s " + op + " failed: " + r.error().message());
  }
  return r;
}

void expect_delivery(Cluster& c, DriverProcess& writer, DriverProcess& reader, int n) {
  constexpr std::uint64_t kFirst = 90000;
  for (int i = 0; i < n; ++i)
    c.must(writer, {{"op", "write"}, {"priority", 2}, {"data", driver::to_hex(message_payload(kFirst + i, 16))}},
           ClauseId::S_PUBLISH);
  int got = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (got < n && std::chrono::steady_clock::now() < give_up) {
    const Reply r = reader.call({{"op", "read"}});
    if (r.ok()) {
      const auto data = driver::from_hex(r.body.value("data", std::string()));
      if (!data || message_id(*data) != std::optional<std::uint64_t>(kFirst + static_cast<std::uint64_t>(got)))
        scenario_fail(ClauseId::V_ONCE, reader.role() +
                                            " delivered something other than the first messages written to it: " +
                                            r.body.value("data", std::string()).substr(0, 64));
      ++got;
    } else if (r.error().code != shm::ErrorCode::Empty) {
      scenario_fail(ClauseId::S_PUBLISH, reader.role() + "'s read failed with " + r.error().message());
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  c.step(writer.role() + " wrote " + std::to_string(n) + " messages, acknowledged; " + reader.role() + " received " +
         std::to_string(got));
  if (got < n)
    scenario_fail(ClauseId::S_PUBLISH, std::to_string(n - got) + " of " + std::to_string(n) +
                                           " acknowledged writes were never delivered to the other process (" +
                                           writer.role() + " wrote them, " + reader.role() +
                                           " read for 3 s and found " + (got == 0 ? "nothing" : std::to_string(got)) +
                                           "), with nothing else going on");
  c.record(ClauseId::S_PUBLISH);
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
  return "scripts/conformance " +
         (params.driver.empty() ? "--adapter " + params.adapter : "--driver '" + params.driver + "'") + " --only " +
         check + " --seed " + std::to_string(params.seed) + " --depth " + depth_name(params.depth);
}

Failure failure_of(const ScenarioFailure& f, const std::vector<std::string>& steps, const std::string& replay) {
  return Failure::of(f.violation, steps, replay);
}

}  // namespace memlink::conformance
