// `memlink-shm inspect`: what a person reaches for after a crash. Opens the
// segment read-only, validates it the way a client would, and reports every
// control field and, per ring, head/tail and a count of slots in each state.
// The report is built once as JSON; the table is rendered from it.
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "memlink/shm/platform.hpp"

namespace memlink::shm::tool {
namespace {

using nlohmann::json;

json error_json(const Error& e) { return json{{"code", std::string(to_string(e.code))}, {"detail", e.text()}}; }

json control_json(const ControlRegion& c) {
  const std::uint32_t flags = c.flags.load(std::memory_order_acquire);
  const std::uint32_t pid = c.daemon_pid.load(std::memory_order_relaxed);
  const std::uint64_t hb = c.heartbeat_ns.load(std::memory_order_relaxed);
  const std::uint64_t now = platform::monotonic_ns();
  json j{
      {"magic", c.magic.load(std::memory_order_acquire)},
      {"layout_version", c.layout_version},
      {"protocol_version", c.protocol_version},
      {"segment_size", c.segment_size},
      {"flags", {{"raw", flags}, {"shutdown", (flags & FLAG_SHUTDOWN) != 0}, {"poisoned", (flags & FLAG_POISONED) != 0}}},
      {"daemon_alive", c.daemon_alive.load(std::memory_order_relaxed)},
      {"daemon_pid", pid},
      {"daemon_process_exists", platform::process_exists(pid)},
      {"heartbeat_ns", hb},
      {"heartbeat_age_s", hb <= now ? static_cast<double>(now - hb) / 1e9 : -1.0},
      {"epoch", c.epoch.load(std::memory_order_relaxed)},
      {"backpressure_permille", c.backpressure.load(std::memory_order_relaxed)},
      {"client_count", c.client_count.load(std::memory_order_relaxed)},
      {"d2c_consumer_pid", c.d2c_consumer_pid.load(std::memory_order_relaxed)},
      {"client_head", c2d_published(c)},  // T-COUNTERS: summed over the client table
      {"daemon_tail", c.daemon_tail.load(std::memory_order_relaxed)},
  };
  for (auto [name, fw] : {std::pair{"daemon_futex", &c.daemon_futex}, std::pair{"client_futex", &c.client_futex},
                          std::pair{"c2d_space_futex", &c.c2d_space_futex},
                          std::pair{"d2c_space_futex", &c.d2c_space_futex}}) {
    j["futex"][name] = {{"word", fw->word.load(std::memory_order_relaxed)},
                        {"waiters", fw->waiters.load(std::memory_order_relaxed)}};
  }
  return j;
}

json ring_json(std::byte* base, std::size_t size, const Geometry& g, Direction d, Priority p) {
  json j{{"name", std::string(to_string(d)) + "/" + std::string(to_string(p))},
         {"capacity", g.capacity(p)},
         {"offset", g.offset(d, p)}};
  auto ring = RingBuffer::attach(base + g.offset(d, p), size - g.offset(d, p), g.capacity(p), g.slot_size, d, p);
  if (!ring) {
    // Still show the raw positions so a person can see what is wrong.
    const auto* hdr = reinterpret_cast<const RingHeader*>(base + g.offset(d, p));
    j["head"] = hdr->head.load(std::memory_order_acquire);
    j["tail"] = hdr->tail.load(std::memory_order_acquire);
    j["error"] = error_json(ring.error());
    return j;
  }
  const SlotStateCounts counts = ring->count_states();
  j["head"] = ring->head();
  j["tail"] = ring->tail();
  j["pending"] = ring->len();
  j["corrupt_skipped"] = ring->corrupt_skipped();
  j["reclaimed"] = ring->reclaimed();
  for (std::size_t s = 0; s < kSlotStateCount; ++s)
    j["states"][std::string(to_string(static_cast<SlotState>(s)))] = counts.count[s];
  j["states"]["invalid"] = counts.invalid;
  // Slots a writer or reader holds (or left behind when it died): who, and
  // for which lap (SPEC S-WORD; layout 2 keeps no timestamp in the slot).
  j["held"] = json::array();
  for (std::uint32_t i = 0; i < ring->capacity(); ++i) {
    const SlotWord w = load_slot_word(ring->slot_header(i));
    const auto state = w.known_state();
    if (!state || *state == SlotState::Empty || *state == SlotState::Ready) continue;
    j["held"].push_back({{"index", i},
                         {"state", std::string(to_string(*state))},
                         {"owner_pid", w.owner_pid},
                         {"owner_alive", platform::process_exists(w.owner_pid)},
                         {"generation", w.generation}});
  }
  return j;
}

// The whole report; "ok" is false if anything failed validation.
json build_report(const std::string& path) {
  json report{{"path", path}};
  {
    RecoveryManager rm(path);
    report["daemon_lock"] = {{"lock_file", rm.lock_path()},
                             {"held", rm.is_already_running()},
                             {"pid_file", rm.pid_path()},
                             {"recorded_pid", rm.recorded_pid()}};
  }
  auto seg = MmapSegment::open(path, MmapSegment::Access::ReadOnly, MmapSegment::Owner::Anyone);
  if (!seg) {
    report["ok"] = false;
    report["error"] = error_json(seg.error());
    return report;
  }
  report["file_size"] = seg->size();
  const ControlRegion& c = *control_of(seg->data());
  auto g = validate_control(seg->data(), seg->size());
  if (!g) {
    report["ok"] = false;
    report["error"] = error_json(g.error());
    // The control region is at least 4096 bytes here (open() checked), so
    // its raw fields are safe to show as evidence.
    report["control"] = control_json(c);
    return report;
  }
  report["control"] = control_json(c);
  report["geometry"] = {{"slot_size", g->slot_size},
                        {"slot_stride", g->slot_stride},
                        {"slots_per_direction", g->slots_per_direction},
                        {"distribution", {{"critical", g->distribution.critical}, {"high", g->distribution.high}, {"low", g->distribution.low}}},
                        {"used_bytes", g->used_bytes}};
  bool ok = (c.flags.load() & FLAG_POISONED) == 0;
  if (!ok) report["error"] = error_json(make_error(ErrorCode::CorruptSegment, "control.flags: segment is poisoned"));
  for (Direction d : {Direction::ClientToDaemon, Direction::DaemonToClient}) {
    for (Priority p : kAllPriorities) {
      json r = ring_json(seg->data(), seg->size(), *g, d, p);
      if (r.contains("error")) {
        if (ok) report["error"] = r["error"];
        ok = false;
      }
      report["rings"].push_back(std::move(r));
    }
  }
  report["ok"] = ok;
  return report;
}

void print_table(const json& r) {
  std::printf("segment    %s (%s bytes)\n", r["path"].get<std::string>().c_str(),
              r.contains("file_size") ? std::to_string(r["file_size"].get<std::uint64_t>()).c_str() : "?");
  if (r.contains("daemon_lock")) {
    const json& l = r["daemon_lock"];
    std::printf("lock       %s %s; PID file %s records pid %u\n", l["lock_file"].get<std::string>().c_str(),
                l["held"].get<bool>() ? "is held (a daemon is alive)" : "is free (no live daemon)",
                l["pid_file"].get<std::string>().c_str(), l["recorded_pid"].get<unsigned>());
  }
  if (r.contains("control")) {
    const json& c = r["control"];
    std::printf("layout     magic 0x%016" PRIx64 ", layout v%u, protocol v%u, segment_size %" PRIu64 "\n",
                c["magic"].get<std::uint64_t>(), c["layout_version"].get<unsigned>(),
                c["protocol_version"].get<unsigned>(), c["segment_size"].get<std::uint64_t>());
    std::printf("daemon     pid %u (%s), daemon_alive %u, epoch %" PRIu64 ", heartbeat %.3f s ago\n",
                c["daemon_pid"].get<unsigned>(), c["daemon_process_exists"].get<bool>() ? "running" : "not running",
                c["daemon_alive"].get<unsigned>(), c["epoch"].get<std::uint64_t>(), c["heartbeat_age_s"].get<double>());
    std::printf("flags      0x%x%s%s\n", c["flags"]["raw"].get<unsigned>(),
                c["flags"]["shutdown"].get<bool>() ? " shutdown" : "", c["flags"]["poisoned"].get<bool>() ? " POISONED" : "");
    std::printf("clients    %u connected, d2c reader pid %u, backpressure %.3f\n", c["client_count"].get<unsigned>(),
                c["d2c_consumer_pid"].get<unsigned>(), c["backpressure_permille"].get<unsigned>() / 1000.0);
    std::printf("counters   client_head %" PRIu64 " (c2d published), daemon_tail %" PRIu64 " (c2d delivered)\n",
                c["client_head"].get<std::uint64_t>(), c["daemon_tail"].get<std::uint64_t>());
    std::printf("futexes   ");
    for (auto& [name, v] : c["futex"].items())
      std::printf(" %s=%u(%u waiting)", name.c_str(), v["word"].get<unsigned>(), v["waiters"].get<unsigned>());
    std::printf("\n");
  }
  if (r.contains("geometry")) {
    const json& g = r["geometry"];
    std::printf("geometry   slot_size %u, stride %u, n %u per direction (critical %u, high %u, low %u), %" PRIu64 " bytes used\n",
                g["slot_size"].get<unsigned>(), g["slot_stride"].get<unsigned>(), g["slots_per_direction"].get<unsigned>(),
                g["distribution"]["critical"].get<unsigned>(), g["distribution"]["high"].get<unsigned>(),
                g["distribution"]["low"].get<unsigned>(), g["used_bytes"].get<std::uint64_t>());
  }
  if (r.contains("rings")) {
    std::printf("\n%-14s %6s %10s %10s %8s %6s %7s %6s %7s %5s %7s %8s\n", "ring", "cap", "head", "tail", "pending",
                "Empty", "Writing", "Ready", "Reading", "Done", "invalid", "corrupt");
    for (const json& ring : r["rings"]) {
      if (ring.contains("error")) {
        std::printf("%-14s %6u %10" PRIu64 " %10" PRIu64 "  ERROR %s\n", ring["name"].get<std::string>().c_str(),
                    ring["capacity"].get<unsigned>(), ring["head"].get<std::uint64_t>(), ring["tail"].get<std::uint64_t>(),
                    ring["error"]["detail"].get<std::string>().c_str());
        continue;
      }
      const json& s = ring["states"];
      std::printf("%-14s %6u %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %6" PRIu64 " %7" PRIu64 " %6" PRIu64 " %7" PRIu64
                  " %5" PRIu64 " %7" PRIu64 " %8" PRIu64 "\n",
                  ring["name"].get<std::string>().c_str(), ring["capacity"].get<unsigned>(),
                  ring["head"].get<std::uint64_t>(), ring["tail"].get<std::uint64_t>(), ring["pending"].get<std::uint64_t>(),
                  s["Empty"].get<std::uint64_t>(), s["Writing"].get<std::uint64_t>(), s["Ready"].get<std::uint64_t>(),
                  s["Reading"].get<std::uint64_t>(), s["Done"].get<std::uint64_t>(), s["invalid"].get<std::uint64_t>(),
                  ring["corrupt_skipped"].get<std::uint64_t>());
    }
    bool header = false;
    for (const json& ring : r["rings"]) {
      if (!ring.contains("held")) continue;
      for (const json& h : ring["held"]) {
        if (!header) {
          std::printf("\nheld slots (a writer or reader is in them, or died there):\n");
          header = true;
        }
        std::printf("  %-14s slot %-5u %-8s owner pid %u (%s), lap %u\n", ring["name"].get<std::string>().c_str(),
                    h["index"].get<unsigned>(), h["state"].get<std::string>().c_str(), h["owner_pid"].get<unsigned>(),
                    h["owner_alive"].get<bool>() ? "running" : "not running", h["generation"].get<unsigned>());
      }
    }
  }
}

}  // namespace

int run_inspect(const std::string& path, bool as_json) {
  const json report = build_report(path);
  if (as_json) {
    std::cout << report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    print_table(report);
  }
  if (!report["ok"].get<bool>()) {
    const json& e = report["error"];
    std::fprintf(stderr, "memlink-shm inspect: %s is not a usable segment: %s: %s\n", path.c_str(),
                 e["code"].get<std::string>().c_str(), e["detail"].get<std::string>().c_str());
    return kExitError;
  }
  return kExitOk;
}

}  // namespace memlink::shm::tool
