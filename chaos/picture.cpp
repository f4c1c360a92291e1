#include "picture.hpp"

#include <algorithm>
#include <optional>
#include <regex>

namespace memlink::chaos {
namespace {

// The message id in a violation ("c2d client 3 priority 1 #17",
// "d2c daemon epoch 2 priority 0 #5"; see to_string(MessageId)).
std::optional<MessageId> named_message(const std::string& violation) {
  static const std::regex re(R"((c2d client|d2c daemon epoch) (\d+) priority (\d+) #(\d+))");
  std::smatch m;
  if (!std::regex_search(violation, m, re)) return std::nullopt;
  MessageId id;
  id.stream = m[1].str()[0] == 'c' ? Stream::C2D : Stream::D2C;
  id.writer = static_cast<std::uint32_t>(std::stoul(m[2].str()));
  id.priority = static_cast<std::uint8_t>(std::stoul(m[3].str()));
  id.n = std::stoull(m[4].str());
  return id;
}

}  // namespace

conformance::Timeline chaos_timeline(const std::vector<ProcessLog>& logs, const std::vector<ProcessLife>& lives,
                                     const std::string& violation, const std::string& replay) {
  using Bar = conformance::Timeline::Bar;
  conformance::Timeline t;
  t.title = "memlink-chaos: a failing run";
  t.clause = violation.substr(0, violation.find(':'));
  t.explanation = violation;
  t.replay = replay;
  t.unit = "ms";
  t.scale = 1e6;
  const auto wanted = named_message(violation);
  for (std::size_t i = 0; i < logs.size(); ++i) {
    const ProcessLog& log = logs[i];
    const ProcessLife& life = i < lives.size() ? lives[i] : ProcessLife{};
    const int lane = static_cast<int>(t.lanes.size());
    t.lanes.push_back(to_string(log.role) + " " + std::to_string(log.instance));
    std::uint64_t end = life.started_ns;
    for (const Record& r : log.records) end = std::max(end, r.t_ns);
    Bar alive;
    alive.lane = lane;
    alive.start = life.started_ns;
    alive.end = end;
    alive.look = Bar::Look::Alive;
    alive.label = t.lanes.back();
    alive.detail = t.lanes.back() + ": " + std::to_string(log.records.size()) + " records" +
                   (life.death.empty() ? "" : "; " + life.death);
    t.bars.push_back(alive);
    if (!life.death.empty()) t.marks.push_back({lane, end, life.death, true});
    constexpr std::uint64_t kNone = ~0ULL;
    std::uint64_t intent = kNone;  // a write of the message in progress: its intent's time
    for (const Record& r : log.records) {
      if (r.type == RecordType::Serving)
        t.marks.push_back({lane, r.t_ns, "serving, epoch " + std::to_string(r.n), false});
      if (!wanted || r.type == RecordType::Serving || r.type == RecordType::Fenced || !(r.id() == *wanted)) continue;
      if (r.type == RecordType::Intent) {
        intent = r.t_ns;
        continue;
      }
      Bar b;
      b.lane = lane;
      b.look = Bar::Look::Broke;
      b.start = r.type == RecordType::Ack || r.type == RecordType::Fail ? (intent != kNone ? intent : r.t_ns) : r.t_ns;
      b.end = r.t_ns;
      b.label = "#" + std::to_string(wanted->n);
      b.detail = to_string(*wanted) + ": " +
                 (r.type == RecordType::Ack       ? "write acknowledged (position " + std::to_string(r.position) + ")"
                  : r.type == RecordType::Fail    ? std::string("write refused")
                  : r.type == RecordType::Deliver ? "delivered (position " + std::to_string(r.position) + ", epoch " +
                                                        std::to_string(r.epoch) + ")"
                                                  : std::string("delivered corrupt"));
      if (r.type == RecordType::Ack || r.type == RecordType::Fail) intent = kNone;
      t.bars.push_back(std::move(b));
    }
    if (intent != kNone) {  // written, never answered: its process died in the call
      Bar b;
      b.lane = lane;
      b.look = Bar::Look::Broke;
      b.start = intent;
      b.end = ~0ULL;
      b.label = "#" + std::to_string(wanted->n);
      b.detail = to_string(*wanted) + ": write never returned";
      t.bars.push_back(std::move(b));
    }
  }
  return t;
}

}  // namespace memlink::chaos
