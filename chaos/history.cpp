#include "history.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <tuple>

#include "memlink/model/rules.hpp"

namespace memlink::chaos {
namespace {

constexpr std::size_t kMaxViolations = 20;

void note(Verdict& v, const std::string& what) {
  if (v.violations.size() < kMaxViolations) v.violations.push_back(what);
}

}  // namespace

HistoryIndex index_history(const std::vector<ProcessLog>& logs, std::uint64_t first_epoch) {
  HistoryIndex h;
  h.logs = logs;
  h.last_deliver.assign(logs.size(), SIZE_MAX);
  for (std::size_t li = 0; li < logs.size(); ++li) {
    const ProcessLog& log = logs[li];
    for (std::size_t i = 0; i < log.records.size(); ++i) {
      const Record& r = log.records[i];
      switch (r.type) {
        case RecordType::Intent:
          h.written[r.id()].intent = true;
          ++h.intended;
          break;
        case RecordType::Ack: {
          HistoryIndex::Written& w = h.written[r.id()];
          w.ack = true;
          w.t_ack = r.t_ns;
          w.position = r.position;
          ++h.acknowledged;
          break;
        }
        case RecordType::Fail:
          h.written[r.id()].fail = true;
          ++h.refused;
          break;
        case RecordType::Deliver: {
          // Readers deliver one after another; daemons in epoch order.
          HistoryIndex::Delivery d{log.role == Role::Daemon ? epoch_rank(r.epoch, first_epoch) : 0, log.instance, i, li,
                                   &r};
          h.delivered[r.id()].push_back(d);
          h.order.push_back(d);
          h.last_deliver[li] = i;
          break;
        }
        case RecordType::Corrupt: h.corrupt.push_back({li, &r}); break;
        case RecordType::Serving:
        case RecordType::Fenced: break;
      }
    }
  }
  auto before = [](const HistoryIndex::Delivery& a, const HistoryIndex::Delivery& b) {
    return std::tie(a.epoch, a.instance, a.index) < std::tie(b.epoch, b.instance, b.index);
  };
  std::sort(h.order.begin(), h.order.end(), before);
  for (auto& [id, ds] : h.delivered) std::sort(ds.begin(), ds.end(), before);
  std::set<MessageId> seen;
  for (const HistoryIndex::Delivery& d : h.order)
    if (seen.insert(d.rec->id()).second) h.first_deliveries.push_back(d);
  return h;
}

void check_tally(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  v.intended += h.intended;
  v.acknowledged += h.acknowledged;
  v.refused += h.refused;
  v.deliveries += h.order.size();
  v.delivered += h.delivered.size();
  for (const auto& [id, ds] : h.delivered) v.per_stream_delivered[stream_name(id.stream)] += 1;
}

void check_no_corruption(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  for (const HistoryIndex::Corruption& c : h.corrupt) {
    const ProcessLog& log = h.logs[c.log];
    ++v.corrupt;
    note(v, to_string(log.role) + " " + std::to_string(log.instance) + " received a corrupt message (" +
                stream_name(c.rec->stream) + ", priority " + std::to_string(c.rec->priority) + ")");
  }
}

void check_acknowledged_delivered(const HistoryIndex& h, const CheckOptions& options, Verdict& v) {
  std::map<Stream, std::uint64_t> may_lose;  // consumers killed, per stream they consumed
  if (options.consumer_kill_may_lose)
    for (const ProcessLog& log : h.logs)
      if (log.killed && log.role != Role::Writer) ++may_lose[log.role == Role::Daemon ? Stream::C2D : Stream::D2C];
  for (const auto& [id, w] : h.written) {
    if (!w.ack || h.delivered.count(id) > 0) continue;
    if (may_lose[id.stream] > 0) {
      --may_lose[id.stream];
      ++v.lost_to_killed_consumers;
    } else {
      ++v.lost;
      note(v, "lost: " + to_string(id) + " was acknowledged (position " + std::to_string(w.position) +
                  ") and never delivered");
    }
  }
}

void check_indeterminate(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  for (const auto& [id, w] : h.written)
    if (w.intent && !w.ack && !w.fail) (h.delivered.count(id) > 0 ? v.indeterminate_delivered : v.indeterminate) += 1;
}

void check_refused_not_delivered(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  for (const auto& [id, w] : h.written)
    if (w.fail && !w.ack && h.delivered.count(id) > 0) {
      ++v.refused_delivered;
      note(v, "refused but delivered: " + to_string(id) + " was delivered although its write failed (not sent)");
    }
}

// T-SEQ: within a ring (stream and priority), one sequence number per
// message (its position; a redelivery keeps it, K-READING).
void check_sequence_unique_per_ring(const HistoryIndex& h, const CheckOptions& options, Verdict& v) {
  if (!options.sequences) return;
  std::map<std::tuple<Stream, std::uint8_t, std::uint64_t>, MessageId> by_sequence;
  for (const auto& [id, ds] : h.delivered) {
    const std::uint64_t seq = ds.front().rec->sequence;
    for (const HistoryIndex::Delivery& d : ds)
      if (d.rec->sequence != seq) {
        ++v.sequence_violations;
        note(v, "sequence: " + to_string(id) + " was delivered with sequence numbers " + std::to_string(seq) + " and " +
                    std::to_string(d.rec->sequence));
      }
    auto [it, fresh] = by_sequence.emplace(std::make_tuple(id.stream, id.priority, seq), id);
    if (!fresh && !(it->second == id)) {
      ++v.sequence_violations;
      note(v, "sequence: " + to_string(it->second) + " and " + to_string(id) + " carry the same sequence number " +
                  std::to_string(seq));
    }
  }
}

// T-SEQ: a writer's numbers grow in the order it wrote. n counts per
// priority; the writer's order across priorities is its Intent order, which
// the ids do not give: compare within a priority.
void check_sequence_grows_per_writer(const HistoryIndex& h, const CheckOptions& options, Verdict& v) {
  if (!options.sequences) return;
  // (stream, writer) -> priority -> (n, sequence) of its delivered messages
  std::map<std::pair<Stream, std::uint32_t>,
           std::map<std::uint8_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>>>
      per_writer;
  for (const auto& [id, ds] : h.delivered)
    per_writer[{id.stream, id.writer}][id.priority].push_back({id.n, ds.front().rec->sequence});
  for (auto& [w, by_prio] : per_writer)
    for (auto& [p, l] : by_prio) {
      std::sort(l.begin(), l.end());
      for (std::size_t i = 1; i < l.size(); ++i)
        if (l[i].second <= l[i - 1].second) {
          ++v.sequence_violations;
          note(v, "sequence: writer " + std::to_string(w.second) + " priority " + std::to_string(p) + " message #" +
                      std::to_string(l[i].first) + " got sequence " + std::to_string(l[i].second) + ", not above #" +
                      std::to_string(l[i - 1].first) + "'s " + std::to_string(l[i - 1].second));
          break;
        }
    }
}

void check_no_phantom(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  for (const auto& [id, ds] : h.delivered) {
    auto it = h.written.find(id);
    if (it == h.written.end() || !it->second.intent) {
      ++v.phantom;
      note(v, "phantom: " + to_string(id) + " was delivered but never written");
    }
  }
}

// Every delivery of a message but the last must be the last thing a
// consumer that was killed recorded (it died between recording and
// finishing, SPEC K-READING).
void check_duplicates_explained(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  for (const auto& [id, ds] : h.delivered)
    for (std::size_t k = 0; k + 1 < ds.size(); ++k) {
      ++v.duplicated;
      const HistoryIndex::Delivery& d = ds[k];
      const ProcessLog& log = h.logs[d.log];
      if (!(log.killed && h.last_deliver[d.log] == d.index)) {
        ++v.duplicates_unexplained;
        note(v, "duplicate: " + to_string(id) + " delivered again, but " + to_string(log.role) + " " +
                    std::to_string(log.instance) + (log.killed ? " went on after it" : " was not killed"));
      }
    }
}

// FIFO per (stream, writer, priority), among first deliveries.
void check_fifo_per_writer_priority(const HistoryIndex& h, const CheckOptions&, Verdict& v) {
  std::map<std::tuple<Stream, std::uint32_t, std::uint8_t>, std::uint64_t> last_n;
  for (const HistoryIndex::Delivery& d : h.first_deliveries) {
    const MessageId id = d.rec->id();
    auto key = std::make_tuple(id.stream, id.writer, id.priority);
    auto it = last_n.find(key);
    if (it != last_n.end() && !model::rules::fifo_allows(it->second, id.n)) {
      ++v.fifo_violations;
      note(v, "FIFO: " + to_string(id) + " delivered after #" + std::to_string(it->second) + " of the same writer");
    }
    last_n[key] = std::max(id.n, it == last_n.end() ? 0 : it->second);
  }
}

// Priority order whenever the consumer had a choice: when a message was
// first taken, the next position of each more urgent ring of its stream
// (after the highest position first taken there) must not have been
// acknowledged before the take began. Needs ring positions.
void check_priority_order(const HistoryIndex& h, const CheckOptions& options, Verdict& v) {
  if (!options.positions) return;
  std::map<std::tuple<Stream, std::uint8_t, std::uint64_t>, const HistoryIndex::Written*>
      acked_at;  // (stream, prio, position)
  for (const auto& [id, w] : h.written)
    if (w.ack) acked_at[{id.stream, id.priority, w.position}] = &w;
  std::map<std::pair<Stream, std::uint8_t>, std::int64_t> max_pos;  // highest first-delivered position
  std::set<std::tuple<Stream, std::uint8_t, std::uint64_t>> taken;
  for (const HistoryIndex::Delivery& d : h.first_deliveries) {
    const Record& r = *d.rec;
    const MessageId id = r.id();
    // A more urgent ring was readable when this take began if its next
    // position (after the highest first taken there) had been acknowledged
    // before and not taken yet; where that position was never acknowledged
    // or was taken, the check cannot decide and counts nothing.
    auto next_of = [&](std::uint8_t p) {
      auto mp = max_pos.find({id.stream, p});
      return mp == max_pos.end() ? std::uint64_t{0} : static_cast<std::uint64_t>(mp->second + 1);
    };
    auto readable = [&](shm::Priority prio) {
      const auto p = static_cast<std::uint8_t>(prio);
      if (p >= id.priority) return false;
      auto w = acked_at.find({id.stream, p, next_of(p)});
      if (w == acked_at.end() || taken.count({id.stream, p, next_of(p)})) return false;
      ++v.priority_checked;
      return w->second->t_ack < r.t_ns;
    };
    if (const auto p = model::rules::ring_to_read(readable)) {  // R-ORDER: it should have been taken first
      ++v.priority_violations;
      const auto pn = static_cast<std::uint8_t>(*p);
      note(v, "priority: " + to_string(id) + " delivered while priority " + std::to_string(pn) + " position " +
                  std::to_string(next_of(pn)) + " was acknowledged and next in its ring");
    }
    taken.insert({id.stream, id.priority, r.position});
    auto& m = max_pos.try_emplace({id.stream, id.priority}, -1).first->second;
    m = std::max<std::int64_t>(m, static_cast<std::int64_t>(r.position));
  }
}

// K-FENCE: along the positions of a c2d ring, first takes never go back to
// an older daemon epoch. Needs ring positions.
void check_fence(const HistoryIndex& h, const CheckOptions& options, Verdict& v) {
  if (!options.positions) return;
  struct Take {
    std::uint64_t position, rank, epoch;  // rank: epoch_rank, the order epochs were served in
    bool operator<(const Take& o) const { return position < o.position; }
  };
  std::map<std::uint8_t, std::vector<Take>> takes;  // c2d priority -> first takes
  for (const HistoryIndex::Delivery& d : h.first_deliveries)
    if (d.rec->stream == Stream::C2D) takes[d.rec->priority].push_back({d.rec->position, d.epoch, d.rec->epoch});
  for (auto& [priority, pe] : takes) {
    std::sort(pe.begin(), pe.end());
    for (std::size_t i = 1; i < pe.size(); ++i)
      if (pe[i].rank < pe[i - 1].rank) {
        ++v.fence_violations;
        note(v, "fence: c2d priority " + std::to_string(priority) + " position " + std::to_string(pe[i].position) +
                    " was taken in epoch " + std::to_string(pe[i].epoch) + " after position " +
                    std::to_string(pe[i - 1].position) + " was taken in epoch " + std::to_string(pe[i - 1].epoch));
      }
  }
}

std::span<const HistoryCheck> history_checks() {
  static constexpr HistoryCheck kChecks[] = {
      {"tally", check_tally},
      {"no-corruption", check_no_corruption},
      {"acknowledged-delivered", check_acknowledged_delivered},
      {"indeterminate", check_indeterminate},
      {"refused-not-delivered", check_refused_not_delivered},
      {"sequence-unique-per-ring", check_sequence_unique_per_ring},
      {"sequence-grows-per-writer", check_sequence_grows_per_writer},
      {"no-phantom", check_no_phantom},
      {"duplicates-explained", check_duplicates_explained},
      {"fifo-per-writer-priority", check_fifo_per_writer_priority},
      {"priority-order", check_priority_order},
      {"fence", check_fence},
  };
  return kChecks;
}

Verdict check_history(const std::vector<ProcessLog>& logs, const CheckOptions& options) {
  const HistoryIndex h = index_history(logs, options.first_epoch);
  Verdict v;
  for (const HistoryCheck& c : history_checks()) c.run(h, options, v);
  return v;
}

}  // namespace memlink::chaos
