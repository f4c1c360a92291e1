#include "picture.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace memlink::chaos {
namespace {

// The message id in a violation ("c2d client 3 priority 1 #17",
// "d2c daemon epoch 2 priority 0 #5"; see to_string(MessageId)).
std::optional<MessageId> named_message(const std::string& violation) {
  // Hand-parsed: std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.
  for (const auto& [prefix, stream] : {std::pair<std::string, Stream>{"c2d client ", Stream::C2D},
                                       std::pair<std::string, Stream>{"d2c daemon epoch ", Stream::D2C}}) {
    const std::size_t at = violation.find(prefix);
    if (at == std::string::npos) continue;
    std::size_t pos = at + prefix.size();
    auto number = [&](std::uint64_t& out) {
      const std::size_t start = pos;
      out = 0;
      while (pos < violation.size() && violation[pos] >= '0' && violation[pos] <= '9')
        out = out * 10 + static_cast<std::uint64_t>(violation[pos++] - '0');
      return pos > start;
    };
    auto literal = [&](const char* text) {
      const std::size_t n = std::char_traits<char>::length(text);
      if (violation.compare(pos, n, text) != 0) return false;
      pos += n;
      return true;
    };
    std::uint64_t writer = 0, priority = 0, n = 0;
    if (number(writer) && literal(" priority ") && number(priority) && literal(" #") && number(n)) {
      MessageId id;
      id.stream = stream;
      id.writer = static_cast<std::uint32_t>(writer);
      id.priority = static_cast<std::uint8_t>(priority);
      id.n = n;
      return id;
    }
  }
  return std::nullopt;
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
    if (life.ended_ns > end) end = life.ended_ns;  // a process stuck in a call logs nothing until it dies
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
  // A long run: draw the few seconds around the named message, and only
  // the processes that lived then.
  std::uint64_t first = ~0ULL, last = 0;
  for (const auto& b : t.bars)
    if (b.look == Bar::Look::Broke) {
      first = std::min(first, b.start);
      last = std::max(last, b.end == ~0ULL ? b.start : b.end);
    }
  constexpr std::uint64_t kAround = 2'000'000'000;  // 2 s each side
  if (first != ~0ULL) {
    t.from = first > kAround ? first - kAround : 0;
    t.to = last + kAround;
    std::vector<int> keep(t.lanes.size(), 0);
    for (const auto& b : t.bars)
      if ((b.end == ~0ULL || b.end >= t.from) && b.start <= t.to) keep[static_cast<std::size_t>(b.lane)] = 1;
    for (const auto& m : t.marks)
      if (m.at >= t.from && m.at <= t.to) keep[static_cast<std::size_t>(m.lane)] = 1;
    std::vector<int> renumber(t.lanes.size(), -1);
    std::vector<std::string> lanes;
    for (std::size_t i = 0; i < t.lanes.size(); ++i)
      if (keep[i]) {
        renumber[i] = static_cast<int>(lanes.size());
        lanes.push_back(t.lanes[i]);
      }
    std::erase_if(t.bars, [&](const Bar& b) { return renumber[static_cast<std::size_t>(b.lane)] < 0; });
    for (auto& b : t.bars) b.lane = renumber[static_cast<std::size_t>(b.lane)];
    std::erase_if(t.marks, [&](const conformance::Timeline::Mark& m) { return renumber[static_cast<std::size_t>(m.lane)] < 0; });
    for (auto& m : t.marks) m.lane = renumber[static_cast<std::size_t>(m.lane)];
    t.lanes = std::move(lanes);
    t.title += " (2 s either side of " + to_string(*wanted) + ")";
  }
  return t;
}

}  // namespace memlink::chaos
