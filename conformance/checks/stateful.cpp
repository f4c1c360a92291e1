// The stateful check: random command sequences run against the adapter and
// the model side by side; after every command the results and the whole
// observable state must agree. A difference fails citing the clause.
#include <rapidcheck/state.h>

#include <algorithm>
#include <sstream>

#include "capabilities.hpp"
#include "compare.hpp"
#include "driver_adapter.hpp"
#include "evidence.hpp"
#include "memlink/conformance/adapter.hpp"
#include "rc_runner.hpp"
#include "segment_frame.hpp"

namespace memlink::conformance {
namespace {

using model::Model;
using Cmd = rc::state::Command<Model, Adapter>;
using namespace std::chrono_literals;

Direction gen_direction() {
  return *rc::gen::inRange(0, 2) == 0 ? Direction::ClientToDaemon : Direction::DaemonToClient;
}
Priority gen_priority() { return static_cast<Priority>(*rc::gen::inRange(0, 3)); }

// Payload sizes weighted to the edges: empty, one below, at and above the
// slot size, above MAX_SLOT_SIZE.
std::size_t gen_size(std::uint32_t slot) {
  return *rc::gen::weightedOneOf<std::size_t>({
      {2, rc::gen::just<std::size_t>(0)},
      {8, rc::gen::inRange<std::size_t>(1, slot + 1)},
      {2, rc::gen::just<std::size_t>(slot)},
      {1, rc::gen::just<std::size_t>(slot > 1 ? slot - 1 : 1)},
      {1, rc::gen::just<std::size_t>(slot + 1)},
      {1, rc::gen::just<std::size_t>(shm::MAX_SLOT_SIZE + 1)},
  });
}

std::vector<std::byte> payload(std::uint64_t seed, std::size_t n) {
  std::vector<std::byte> out(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + n + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
  return out;
}

// The parameters of the running check: commands the implementation does not
// claim the capability for (DRIVER.md D-CAPS) are never generated. RapidCheck
// also checks preconditions while shrinking, outside any one case, so this
// is the check's (it outlives every case), not a case's adapter.
const Params* g_params = nullptr;
bool claims(const char* capability) { return g_params == nullptr || g_params->claims(capability); }
// SPEC T-SHUTDOWN says what clients may do after the daemon's shutdown, not
// what the daemon's own endpoint does: the model lets it go on serving, as
// the reference does; through a driver, a daemon that stops serving is as
// right, so its own operations are not generated after shutdown.
void require_daemon_serving(const Model& m) {
  const bool in_process = g_params == nullptr || g_params->driver.empty();  // (RapidCheck cannot show a nullptr)
  RC_PRE(in_process || !m.is_shut_down());
}
bool daemon_writes(Direction d) { return d == Direction::DaemonToClient; }
bool daemon_reads(Direction d) { return d == Direction::ClientToDaemon; }

// A write refused for one of several reasons may name any of them (SPEC
// orders none): one the model would also give counts as the model's.
// (A blocking write's Full is Timeout.)
Got any_refusal(const Model& m, Direction d, Priority p, std::size_t size, Got got, bool blocking = false) {
  if (!got.error) return got;
  auto all = m.write_refusals(d, p, size);
  if (blocking) std::replace(all.begin(), all.end(), shm::ErrorCode::Full, shm::ErrorCode::Timeout);
  if (all.size() > 1 && std::find(all.begin(), all.end(), *got.error) != all.end()) got.error = all.front();
  return got;
}

// Preconditions every command with a direction and priority shares.
void require_route(Direction d, Priority p) {
  RC_PRE(d == Direction::ClientToDaemon || claims("daemon_writes"));
  RC_PRE(p == Priority::Low || claims("priorities"));
}

const char* dir_name(Direction d) { return d == Direction::ClientToDaemon ? "c2d" : "d2c"; }
std::string prio_name(Priority p) { return std::string(shm::to_string(p)); }

// A read that finds nothing where the spec delivers a message: the defect
// that matters is that acknowledged writes never arrive (S-PUBLISH), not the
// order they would have come in.
void name_undelivered(const std::string& what, Direction d, const Model& m, const model::Outcome& want,
                      const Got& got) {
  if (!want.message || got.error != shm::ErrorCode::Empty) return;
  const std::size_t n = acknowledged_pending(m, d);
  fail_case(ClauseId::S_PUBLISH, what + ": Empty, but " + std::to_string(n) + " acknowledged write" +
                                     (n == 1 ? " was" : "s were") +
                                     " never delivered to the other process (the spec delivers the " +
                                     std::string(shm::to_string(want.message->priority)) + " message, sequence " +
                                     std::to_string(want.message->sequence) + ")");
}

// The segment's bytes before a step, where the suite can read them (a
// SPEC-layout transport): what the step's writes are judged against.
std::vector<std::byte> image_before(Adapter& a) {
  if (!claims("spec_layout")) return {};
  const auto now = a.segment_bytes();
  return {now.begin(), now.end()};
}

// Every shared write predicted: after the step, every field that moved is
// one the model lets this step write, and nobody is counted asleep.
void check_frame(const StepFacts& facts, const std::string& what, const Model& m, const Model& next, Adapter& a,
                 const std::vector<std::byte>& before) {
  if (before.empty()) return;
  const std::vector<std::byte> after = [&] {
    const auto now = a.segment_bytes();
    return std::vector<std::byte>(now.begin(), now.end());
  }();
  const model::View was = m.view(), now = next.view();
  const FrameStep frame{facts.kind, facts.direction, facts.priority, &was, &now, what};
  std::vector<Violation> v = unpredicted_writes(frame, before, after);
  const std::vector<Violation> q = quiescent_violations(after, what);
  v.insert(v.end(), q.begin(), q.end());
  if (!v.empty()) {
    if (v.size() > 1) v.front().text += " (and " + std::to_string(v.size() - 1) + " more such fields)";
    fail_case(v.front());
  }
  if (after.empty()) return;
  g_params->record(ClauseId::C_LAYOUT);
  g_params->record(ClauseId::R_LAYOUT);
  g_params->record(ClauseId::S_LAYOUT);
}

// Runs op on a copy of the model and on the adapter, compares, checks the
// whole observable state after it, and records what the step showed.
template <class ModelOp, class AdapterOp>
void step(const std::string& what, StepFacts facts, const Model& m, Adapter& a, ModelOp model_op,
          AdapterOp adapter_op) {
  Model next = m;
  const model::Outcome want = model_op(next);
  const std::vector<std::byte> before = image_before(a);
  const Got got = adapter_op();
  if (facts.kind == StepKind::Read) name_undelivered(what, facts.direction, m, want, got);
  compare_outcome(what, want, got);
  facts.observed = claims("observe");
  facts.sequences = claims("sequences");
  if (facts.observed) compare_views(*g_params, next.view(), a.observe());
  check_frame(facts, what, m, next, a, before);
  for (const ClauseId clause : clauses_seen(facts, m, next, want)) g_params->record(clause);
}
StepFacts facts(StepKind kind, Direction d = Direction::ClientToDaemon, Priority p = Priority::Low) {
  StepFacts f;
  f.kind = kind;
  f.direction = d;
  f.priority = p;
  return f;
}

struct Write : Cmd {
  Direction d = gen_direction();
  Priority p = gen_priority();
  std::size_t size;
  std::uint64_t seed = *rc::gen::arbitrary<std::uint64_t>();
  explicit Write(const Model& m) : size(gen_size(m.slot_size())) {}
  void checkPreconditions(const Model& m) const override {
    require_route(d, p);
    if (daemon_writes(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::DaemonToClient || m.client_count() > 0);
  }
  void apply(Model& m) const override { m.write(d, p, payload(seed, size)); }
  void run(const Model& m, Adapter& a) const override {
    const auto data = payload(seed, size);
    step(
        "write", facts(StepKind::Write, d, p), m, a, [&](Model& x) { return x.write(d, p, data); },
        [&] { return any_refusal(m, d, p, data.size(), got_from(a.write(d, p, data))); });
  }
  void show(std::ostream& os) const override {
    os << "write " << dir_name(d) << " " << prio_name(p) << " " << size << " bytes";
  }
};

struct WriteBlocking : Cmd {
  Direction d = gen_direction();
  Priority p = gen_priority();
  std::size_t size;
  std::uint64_t seed = *rc::gen::arbitrary<std::uint64_t>();
  explicit WriteBlocking(const Model& m) : size(gen_size(m.slot_size())) {}
  void checkPreconditions(const Model& m) const override {
    RC_PRE(claims("write_blocking"));
    require_route(d, p);
    if (daemon_writes(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::DaemonToClient || m.client_count() > 0);
  }
  void apply(Model& m) const override { m.write_blocking(d, p, payload(seed, size)); }
  void run(const Model& m, Adapter& a) const override {
    const auto data = payload(seed, size);
    step(
        "write_blocking(2 ms)", facts(StepKind::WriteBlocking, d, p), m, a,
        [&](Model& x) { return x.write_blocking(d, p, data); },
        [&] { return any_refusal(m, d, p, data.size(), got_from(a.write_blocking(d, p, data, 2ms)), true); });
  }
  void show(std::ostream& os) const override {
    os << "write_blocking " << dir_name(d) << " " << prio_name(p) << " " << size << " bytes, 2 ms";
  }
};

struct Read : Cmd {
  Direction d = gen_direction();
  void checkPreconditions(const Model& m) const override {
    require_route(d, Priority::Low);
    if (daemon_reads(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::ClientToDaemon || m.client_count() > 0);
  }
  void apply(Model& m) const override { m.read(d); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "read " + std::string(dir_name(d)), facts(StepKind::Read, d), m, a, [&](Model& x) { return x.read(d); },
        [&] { return got_from(a.read(d)); });
  }
  void show(std::ostream& os) const override { os << "read " << dir_name(d); }
};

struct Peek : Cmd {
  Direction d = gen_direction();
  void checkPreconditions(const Model& m) const override {
    RC_PRE(claims("peek"));
    require_route(d, Priority::Low);
    if (daemon_reads(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::ClientToDaemon || m.client_count() > 0);
  }
  void apply(Model&) const override {}
  void run(const Model& m, Adapter& a) const override {
    step(
        "peek", facts(StepKind::Peek, d), m, a, [&](Model& x) { return x.peek(d); },
        [&] { return got_from(a.peek(d)); });
  }
  void show(std::ostream& os) const override { os << "peek " << dir_name(d); }
};

struct SetBackpressure : Cmd {
  std::uint32_t value = *rc::gen::weightedOneOf<std::uint32_t>(
      {{4, rc::gen::inRange<std::uint32_t>(0, 1001)}, {1, rc::gen::inRange<std::uint32_t>(1001, 100000)}});
  void checkPreconditions(const Model& m) const override {
    RC_PRE(claims("backpressure"));
    require_daemon_serving(m);
  }
  void apply(Model& m) const override { m.set_backpressure(value); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "set_backpressure", facts(StepKind::SetBackpressure), m, a, [&](Model& x) { return x.set_backpressure(value); },
        [&] { return got_from(a.set_backpressure(value)); });
  }
  void show(std::ostream& os) const override { os << "set_backpressure " << value; }
};

struct Connect : Cmd {
  std::uint16_t version;
  explicit Connect(const Model& m)
      : version(*rc::gen::weightedOneOf<std::uint16_t>(
            {{4, rc::gen::just(m.protocol_version())}, {1, rc::gen::arbitrary<std::uint16_t>()}})) {}
  void checkPreconditions(const Model& m) const override { RC_PRE(m.client_count() < 4); }
  void apply(Model& m) const override { m.connect(version); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "connect", facts(StepKind::Connect), m, a, [&](Model& x) { return x.connect(version); },
        [&] {
          Got g = got_from(a.connect(version));
          // T-SHUTDOWN: a daemon that shut down may remove the segment's name;
          // a connect then finds nothing, NotFound, which the spec allows too.
          Model x = m;
          const auto want = x.connect(version);
          if (m.is_shut_down() && g.error == shm::ErrorCode::NotFound && want.error) g.error = want.error;
          return g;
        });
  }
  void show(std::ostream& os) const override { os << "connect protocol " << version; }
};

struct Disconnect : Cmd {
  void checkPreconditions(const Model& m) const override { RC_PRE(m.client_count() > 0); }
  void apply(Model& m) const override { m.disconnect(); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "disconnect", facts(StepKind::Disconnect), m, a, [&](Model& x) { return x.disconnect(); },
        [&] {
          a.disconnect();
          return Got{};
        });
  }
  void show(std::ostream& os) const override { os << "disconnect"; }
};

struct Reopen : Cmd {
  void checkPreconditions(const Model& m) const override { RC_PRE(m.client_count() > 0 && !m.is_shut_down()); }
  void apply(Model& m) const override { m.reopen(); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "unmap and reopen", facts(StepKind::Reopen), m, a, [&](Model& x) { return x.reopen(); },
        [&] { return got_from(a.reopen()); });
  }
  void show(std::ostream& os) const override { os << "unmap and reopen the segment"; }
};

struct StopWriter : Cmd {
  Direction d = gen_direction();
  Priority p = gen_priority();
  model::WriterStop where = *rc::gen::inRange(0, 2) == 0 ? model::WriterStop::AfterClaim : model::WriterStop::AfterFill;
  std::size_t size;
  std::uint64_t seed = *rc::gen::arbitrary<std::uint64_t>();
  int rare = *rc::gen::inRange(0, 3);  // a third as often as the others
  explicit StopWriter(const Model& m) : size(gen_size(m.slot_size())) {}
  void checkPreconditions(const Model& m) const override {
    RC_PRE(rare == 0 && claims("stops"));
    require_route(d, p);
    if (daemon_writes(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::DaemonToClient || m.client_count() > 0);
  }
  void apply(Model& m) const override { m.stop_writer(d, p, where, payload(seed, size)); }
  void run(const Model& m, Adapter& a) const override {
    const auto data = payload(seed, size);
    step(
        "writer stops", facts(StepKind::StopWriter, d, p), m, a,
        [&](Model& x) { return x.stop_writer(d, p, where, data); },
        [&] { return got_from(a.stop_writer(d, p, where, data)); });
  }
  void show(std::ostream& os) const override {
    os << "writer stops after " << (where == model::WriterStop::AfterClaim ? "claim" : "fill") << " " << dir_name(d)
       << " " << prio_name(p) << " " << size << " bytes";
  }
};

struct StopReader : Cmd {
  Direction d = gen_direction();
  model::ReaderStop where =
      *rc::gen::inRange(0, 2) == 0 ? model::ReaderStop::AfterTake : model::ReaderStop::AfterComplete;
  int rare = *rc::gen::inRange(0, 4);
  void checkPreconditions(const Model& m) const override {
    RC_PRE(rare == 0 && claims("stops"));
    require_route(d, Priority::Low);
    if (daemon_reads(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::ClientToDaemon || m.client_count() > 0);
  }
  void apply(Model& m) const override { m.stop_reader(d, where); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "reader stops", facts(StepKind::StopReader, d), m, a, [&](Model& x) { return x.stop_reader(d, where); },
        [&] { return got_from(a.stop_reader(d, where)); });
  }
  void show(std::ostream& os) const override {
    os << "reader stops after " << (where == model::ReaderStop::AfterTake ? "take" : "complete") << " " << dir_name(d);
  }
};

// K-STALE: the stopped writers and readers of direction d die, and its
// consumer recovers (K-WRITING, K-READING, K-DONE).
struct Recover : Cmd {
  Direction d = gen_direction();
  void checkPreconditions(const Model& m) const override {
    RC_PRE(claims("stops"));
    require_route(d, Priority::Low);
    if (daemon_reads(d)) require_daemon_serving(m);
    RC_PRE(d == Direction::ClientToDaemon || m.client_count() > 0);
  }
  void apply(Model& m) const override { m.recover(d); }
  void run(const Model& m, Adapter& a) const override {
    Model next = m;
    const model::Outcome want = next.recover(d);
    const std::vector<std::byte> before = image_before(a);
    compare_outcome("stopped processes die; consumer recovers", want, got_from(a.recover(d)));
    const auto& r = next.last_recovery();
    // The clause a difference breaks: what recovery did in this direction.
    const ClauseId clause = r.reading > 0   ? ClauseId::K_READING
                            : r.writing > 0 ? ClauseId::K_WRITING
                            : r.done > 0    ? ClauseId::K_DONE
                                            : ClauseId::K_STALE;
    if (r.writing > 0) g_params->record(ClauseId::K_WRITING);
    if (r.reading > 0) g_params->record(ClauseId::K_READING);
    if (r.done > 0) g_params->record(ClauseId::K_DONE);
    if (r.writing + r.reading + r.done > 0) g_params->record(ClauseId::K_STALE);  // a dead holder's slot, recovered
    const model::View w = next.view();
    const model::View g = a.observe();
    const auto di = static_cast<std::size_t>(d);
    for (Priority p : shm::kAllPriorities) {
      const auto& wr = w.rings[di][static_cast<std::size_t>(p)];
      const auto& gr = g.rings[di][static_cast<std::size_t>(p)];
      if (wr.tail != gr.tail || wr.slots != gr.slots)
        fail_case(clause, std::string("after recovery of ") + dir_name(d) + " " + prio_name(p) +
                              ": the spec requires tail " + std::to_string(wr.tail) + ", the implementation has tail " +
                              std::to_string(gr.tail) + (wr.slots != gr.slots ? " (slot states differ)" : ""));
    }
    compare_views(*g_params, w, g);
    check_frame(facts(StepKind::Recover, d), "stopped processes die; consumer recovers", m, next, a, before);
  }
  void show(std::ostream& os) const override { os << "stopped processes die, " << dir_name(d) << " consumer recovers"; }
};

// A hostile peer changes one field a peer can write (V-SLOT): payload,
// checksum (low and high half), length (past the slot, inside its padding,
// shorter), priority, position, state, sequence.
struct CorruptOldest : Cmd {
  Direction d = gen_direction();
  Priority p = gen_priority();
  model::Corruption what = static_cast<model::Corruption>(*rc::gen::inRange(0, model::kCorruptionCount));
  void checkPreconditions(const Model& m) const override {
    RC_PRE(claims("stops"));
    require_route(d, p);
    RC_PRE(m.oldest_is_corruptible(d, p, what));
  }
  void apply(Model& m) const override { m.corrupt_oldest(d, p, what); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "peer corrupts the oldest message", facts(StepKind::Corrupt, d, p), m, a,
        [&](Model& x) { return x.corrupt_oldest(d, p, what); }, [&] { return got_from(a.corrupt_oldest(d, p, what)); });
  }
  void show(std::ostream& os) const override {
    os << "hostile peer changes " << model::to_string(what) << " of the oldest " << dir_name(d) << " " << prio_name(p)
       << " message";
  }
};

struct Shutdown : Cmd {
  int rare = *rc::gen::inRange(0, 8);
  void checkPreconditions(const Model& m) const override { RC_PRE(rare == 0 && !m.is_shut_down()); }
  void apply(Model& m) const override { m.shutdown(); }
  void run(const Model& m, Adapter& a) const override {
    step(
        "daemon shutdown", facts(StepKind::Shutdown), m, a, [&](Model& x) { return x.shutdown(); },
        [&] { return got_from(a.shutdown()); });
  }
  void show(std::ostream& os) const override { os << "daemon shuts down"; }
};

// A segment of 1-9 slots per direction as SPEC's geometry lays it out, with
// slot sizes at the edges; both fitted to what the transport accepts
// (D-LIMITS): a transport with a floor on segment sizes gets its floor, one
// with a fixed slot size that size.
// A transport that can format aged segments (C-AGE) gets them in half of
// its cases: every counter then passes its wrap within a few messages.
model::Config gen_config(const driver::Limits& limits, bool aged) {
  model::Config c;
  if (aged)
    c.age = *rc::gen::weightedOneOf<shm::SegmentAge>({{2, rc::gen::just(shm::SegmentAge::Fresh)},
                                                      {1, rc::gen::just(shm::SegmentAge::LapWrap)},
                                                      {1, rc::gen::just(shm::SegmentAge::PositionEnd)}});
  c.slot_size = limits.slot(*rc::gen::element<std::uint32_t>(1u, 8u, 64u, 100u, 1000u, 4096u));
  const auto n = *rc::gen::inRange<std::uint32_t>(1, 10);
  const std::size_t stride = shm::slot_stride_for(c.slot_size);
  const std::size_t base = 4096 + 2 * (3 * shm::RING_HEADER_SIZE + model::distribution(n).total() * stride);
  c.segment_size = limits.segment(base + *rc::gen::inRange<std::size_t>(0, 2 * stride));
  c.protocol_version = *rc::gen::inRange<std::uint16_t>(0, 5);
  return c;
}

}  // namespace

// What the commands above need (their preconditions ask claims() for these).
Gates stateful_gates() {
  return {
      {"write commands at priorities 0 and 1 (else priority 2 only)", {"priorities"}},
      {"d2c writes by the daemon, and reads by a client", {"daemon_writes"}},
      {"write_blocking commands", {"write_blocking"}},
      {"peek commands", {"peek"}},
      {"set_backpressure commands, 0..1000 and above", {"backpressure"}},
      {"writers and readers that stop halfway, recover, a hostile peer's corruption", {"stops"}},
      {"the whole observable state compared after every step", {"observe"}},
      {"sequence numbers compared (T-SEQ; R-FIFO by number, else by payload)", {"sequences"}},
      {"G-DIST's ring capacities (else the capacities create answered)", {"spec_layout"}},
      {"every field each step writes predicted by the model; no sleeper counted between calls", {"spec_layout"}},
      {"segments formatted aged: positions, generations and epoch at their wraps (C-AGE)", {"aged"}},
  };
}

CheckResult run_stateful(const Params& params) {
  g_params = &params;
  struct Reset {
    ~Reset() { g_params = nullptr; }
  } reset;
  // Through a driver the processes serve case after case (D-RESET), so it
  // runs as many cases as in process.
  const int cases = depth_budget(params, 100, 2000, 20000);
  return rc_check("stateful", params, cases, depth_budget(params, 80, 150, 300), [&] {
    model::Config config = *rc::gen::exec([&] { return gen_config(params.limits, claims("aged")); });
    auto adapter = adapter_for(params);
    RC_ASSERT(adapter != nullptr);
    if (auto s = adapter->create(config); !s)
      fail_case(ClauseId::G_FIT, "creating a segment of " + std::to_string(config.segment_size) + " bytes, slot size " +
                                     std::to_string(config.slot_size) + " failed: " + s.error().message());
    // Without the SPEC layout G-DIST does not bind: the model takes the
    // capacities the implementation reported (and R-CAPACITY holds it to
    // them), and the slot size it reported, if it did.
    if (!claims("spec_layout")) {
      config.capacity = adapter->reported_capacity();
      if (const auto slot = adapter->reported_slot_size()) config.slot_size = *slot;
    }
    auto m = Model::create(config);
    RC_ASSERT(m.has_value());
    if (claims("observe")) compare_geometry(params, m->view(), adapter->observe());
    // C-AGE is seen where an aged segment's case runs; a failure in it names
    // the clause that broke at the wrap.
    if (config.age != shm::SegmentAge::Fresh) params.record(ClauseId::C_AGE);
    compare_sequences(claims("sequences"));
    compare_outcome("connect", m->connect(config.protocol_version),
                    got_from(adapter->connect(config.protocol_version)));
    rc::state::check(*m, *adapter,
                     rc::state::gen::execOneOfWithArgs<Write, Write, WriteBlocking, Read, Read, Peek, SetBackpressure,
                                                       Connect, Disconnect, Reopen, StopWriter, StopReader, Recover,
                                                       CorruptOldest, Shutdown>());
  });
}

}  // namespace memlink::conformance
