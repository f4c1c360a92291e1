// What the recovery check's scenarios share (recovery.cpp,
// recovery_points.cpp): writes that must be acknowledged, reads until every
// expected message came, and the verdict on what was delivered. Every
// scenario runs on a Cluster of its own; a process it kills or stops is a
// process of its own (Placement::OwnProcess).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "driver_cluster.hpp"

namespace memlink::conformance::recovery {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;
using namespace std::chrono_literals;

// Patient: a live daemon never looks dead, however loaded the machine
// (5 s heartbeat and daemon timeouts; a dead one is known by its pid).
Cluster::Options patient_options();
// A scenario of the recovery check: what it runs, the capabilities it
// needs (all of them; DRIVER.md's capability map is made from these), and
// the options of its cluster.
struct Scenario {
  std::string name;
  std::function<void(Cluster&)> run;
  std::vector<std::string> needs;
  Cluster::Options options = patient_options();
};
// Every scenario the check knows, whatever the driver claims, with `points`
// the crash and pause points it names.
std::vector<Scenario> all_scenarios(std::uint64_t seed, const std::vector<std::string>& points);
// Every crash and pause point in `points` (the driver's, or the
// reference's), crashed and held (recovery_points.cpp).
std::vector<Scenario> point_scenarios(const std::vector<std::string>& points);

json write_request(std::uint64_t id, int priority);
// The priority message `id` goes to: all three in turn with `priorities`.
int priority_of(const Cluster& c, std::uint64_t id);

// Writes ids [from, to) from `client`, all of which must be acknowledged.
std::set<std::uint64_t> write_all(Cluster& c, DriverProcess& client, std::uint64_t from, std::uint64_t to,
                                  bool priorities);

// Reads through `reader` until it has seen every id of `expect` or `patience`
// passes with nothing new (recovery waits out stale_after and claim_timeout).
// Returns how often each id was delivered.
std::map<std::uint64_t, int> read_until(Cluster& c, DriverProcess& reader, const std::set<std::uint64_t>& expect,
                                        std::chrono::milliseconds patience = 3s);

// Every acknowledged message delivered: "N acknowledged writes were never
// delivered" citing `clause`; exactly once unless it is `may_repeat`.
void expect_delivered(const std::set<std::uint64_t>& acked, const std::map<std::uint64_t, int>& got, ClauseId clause,
                      const std::string& context, std::optional<std::uint64_t> may_repeat = {});

// A daemon that must take the segment over (K-TAKEOVER), retried while the
// one before it still looks alive (AlreadyExists) for up to `patience`.
Reply take_over(Cluster& c, std::unique_ptr<DriverProcess>& out, const std::string& role,
                Placement placement = Placement::Any, std::chrono::milliseconds patience = 10s);

// A process that arms `point` (D-ARM: "crash", "stop" or "hold") and then
// sends `request`, which reaches it: for a crash it must die there, for a
// stop it must stop there (its request stays pending).
void expect_death(Cluster& c, DriverProcess& p, const std::string& point, const json& request);
void expect_stop(Cluster& c, DriverProcess& p, const std::string& point, const json& request);

}  // namespace memlink::conformance::recovery
