#include "linearizability.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <unordered_set>

#include "memlink/model/queue_spec.hpp"

namespace memlink::conformance {
namespace {

using Kind = HistoryOp::Kind;
using model::QueueSpec;
using QueueState = QueueSpec::State;

model::QueueOp queue_op(const HistoryOp& op) {
  return model::QueueOp{op.kind == Kind::Write ? model::QueueOp::Kind::Write : model::QueueOp::Kind::Read, op.priority,
                        op.id, op.ok, op.ghost};
}

// The search ran out of its budget of distinct states: it cannot say.
struct OutOfBudget {};

// Wing & Gong's search with Lowe's memoisation, over the model's queue
// specification (model/queue_spec.hpp): the spec says whether an outcome is
// allowed in a state; the search tries every order real time allows.
class Search {
 public:
  Search(const std::vector<HistoryOp>& h, const std::array<std::uint32_t, shm::kPriorityCount>& cap,
         std::size_t max_states)
      : h_(h), spec_(cap), done_(h.size(), false), state_(spec_.init()), max_states_(max_states) {}

  bool run() { return search(); }
  std::size_t states() const { return seen_.size(); }
  std::size_t longest() const { return longest_; }
  // The operations of the longest valid prefix found (by index).
  const std::vector<bool>& best_prefix() const { return best_; }

 private:
  // Applies op i to the state if the spec allows its result. R-VISIBLE: a
  // queued write may be invisible to the read if it had not returned when
  // the read was invoked.
  bool apply(std::size_t i, QueueState& s) const {
    const HistoryOp& op = h_[i];
    return spec_.step(s, queue_op(op), i, [&](std::size_t w) { return h_[w].response_ns > op.invoke_ns; });
  }

  // The exact search state (no hash: a collision would prune a valid order).
  std::string fingerprint(const QueueState& s) const {
    std::string key(done_.size(), '0');
    for (std::size_t i = 0; i < done_.size(); ++i)
      if (done_[i]) key[i] = '1';
    for (const auto& q : s.queued) {
      key += '|';
      for (const QueueSpec::Entry& e : q) key += std::to_string(e.write) + ',';
    }
    return key;
  }

  // One node of the search: the state on entry and which of its children
  // (2 per operation: applied, or a ghost skipped; then one reclaim per
  // priority) is next. The search keeps these on a vector, not the call
  // stack: a history of thousands of operations is as deep as it is long,
  // and a sanitizer's frames would overflow the thread's stack.
  struct Node {
    std::size_t placed;
    std::uint64_t first_return;  // ops invoked after this cannot come next
    std::size_t next_child = 0;
    QueueState entry;
    std::size_t undo = SIZE_MAX;  // the op the child being tried placed
  };
  enum class Visit { Complete, Seen, Open };

  // Records progress and the memo for the state reached with `placed` ops.
  Visit visit(std::size_t placed) {
    if (placed > longest_ || best_.empty()) {
      longest_ = placed;
      best_ = done_;
    }
    if (placed == h_.size()) return Visit::Complete;
    if (!seen_.insert(fingerprint(state_)).second) return Visit::Seen;
    if (seen_.size() > max_states_) throw OutOfBudget{};
    return Visit::Open;
  }

  Node open(std::size_t placed) const {
    // Ops that may come next: invoked before every pending op has returned.
    std::uint64_t first_return = UINT64_MAX;
    for (std::size_t i = 0; i < h_.size(); ++i)
      if (!done_[i]) first_return = std::min(first_return, h_[i].response_ns);
    return Node{placed, first_return, 0, state_, SIZE_MAX};
  }

  // Moves state_ and done_ to node's next child; false when none is left.
  bool step_into_next_child(Node& n, std::size_t& child_placed) {
    const std::size_t ops = 2 * h_.size();
    while (n.next_child < ops + shm::kPriorityCount) {
      const std::size_t c = n.next_child++;
      if (c < ops) {
        const std::size_t i = c / 2;
        if (done_[i] || h_[i].invoke_ns > n.first_return) continue;
        if (c % 2 == 0 && !apply(i, state_)) {
          state_ = n.entry;
          continue;
        }
        if (c % 2 == 1 && !h_[i].ghost) continue;  // only a ghost may take no position at all
        done_[i] = true;
        n.undo = i;
        child_placed = n.placed + 1;
        return true;
      }
      // Recovery reclaims a ghost that holds the oldest position of its ring.
      if (!spec_.reclaim_ghost(state_, shm::kAllPriorities[c - ops])) continue;
      child_placed = n.placed;
      return true;
    }
    return false;
  }

  void step_back(Node& n) {
    if (n.undo != SIZE_MAX) done_[n.undo] = false;
    n.undo = SIZE_MAX;
    state_ = n.entry;
  }

  bool search() {
    if (const Visit v = visit(0); v != Visit::Open) return v == Visit::Complete;
    std::vector<Node> path;
    path.push_back(open(0));
    while (!path.empty()) {
      Node& n = path.back();
      std::size_t child = 0;
      if (!step_into_next_child(n, child)) {
        path.pop_back();
        if (!path.empty()) step_back(path.back());
        continue;
      }
      const Visit v = visit(child);
      if (v == Visit::Complete) return true;
      if (v == Visit::Seen)
        step_back(n);
      else
        path.push_back(open(child));
    }
    return false;
  }

  const std::vector<HistoryOp>& h_;
  QueueSpec spec_;
  std::vector<bool> done_;
  QueueState state_;
  std::unordered_set<std::string> seen_;
  std::size_t longest_ = 0;
  std::vector<bool> best_;
  std::size_t max_states_;
};

}  // namespace

LinearizabilityResult check_linearizable(const std::vector<HistoryOp>& history,
                                         const std::array<std::uint32_t, shm::kPriorityCount>& capacity,
                                         std::size_t max_states) {
  Search search(history, capacity, max_states);
  LinearizabilityResult r;
  try {
    r.linearizable = search.run();
  } catch (const OutOfBudget&) {
    r.decided = false;
    r.states = search.states();
    r.explanation = "undecided: the search met its budget of " + std::to_string(max_states) +
                    " distinct states before it found an order or ruled every order out";
    return r;
  }
  r.states = search.states();
  r.longest_prefix = search.longest();
  if (!r.linearizable) {
    // The operations that could have come next after the longest valid
    // prefix (invoked before the first outstanding one returned) and that
    // none could be placed: where the history breaks the spec.
    const auto& prefix = search.best_prefix();
    std::uint64_t first_return = UINT64_MAX;
    for (std::size_t i = 0; i < history.size(); ++i)
      if (!prefix[i]) first_return = std::min(first_return, history[i].response_ns);
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (prefix[i]) r.prefix.push_back(i);
      else if (history[i].invoke_ns <= first_return) r.stuck.push_back(i);
    }
  }
  if (!r.linearizable)
    r.explanation = "no order of the " + std::to_string(history.size()) +
                    " operations respects real time and the spec; the longest valid prefix has " +
                    std::to_string(r.longest_prefix) + " operations";
  return r;
}

std::string format_history(const std::vector<HistoryOp>& history) {
  std::vector<const HistoryOp*> ops;
  for (const auto& op : history) ops.push_back(&op);
  std::sort(ops.begin(), ops.end(), [](auto* a, auto* b) { return a->invoke_ns < b->invoke_ns; });
  const std::uint64_t t0 = ops.empty() ? 0 : ops.front()->invoke_ns;
  std::string out;
  char line[200];
  for (const HistoryOp* op : ops) {
    const double a = (op->invoke_ns - t0) / 1000.0, b = (op->response_ns - t0) / 1000.0;
    if (op->kind == Kind::Write)
      std::snprintf(line, sizeof line, "  [%9.1f .. %9.1f us] p%d write %-8s #%llu -> %s\n", a, b, op->process,
                    std::string(shm::to_string(op->priority)).c_str(), static_cast<unsigned long long>(op->id),
                    op->ok ? "ok" : "Full");
    else if (op->ok)
      std::snprintf(line, sizeof line, "  [%9.1f .. %9.1f us] p%d read           -> %s #%llu seq %llu\n", a, b, op->process,
                    std::string(shm::to_string(op->priority)).c_str(), static_cast<unsigned long long>(op->id),
                    static_cast<unsigned long long>(op->sequence));
    else
      std::snprintf(line, sizeof line, "  [%9.1f .. %9.1f us] p%d read           -> Empty\n", a, b, op->process);
    out += line;
  }
  return out;
}

Timeline history_timeline(const std::vector<HistoryOp>& history, const LinearizabilityResult& lin,
                          const std::string& title, const std::string& clause, const std::string& replay) {
  Timeline t;
  t.title = title;
  t.clause = clause;
  t.explanation = lin.linearizable ? "linearizable" : lin.explanation;
  t.replay = replay;
  std::map<int, int> lane_of;
  for (const auto& op : history) lane_of.emplace(op.process, 0);
  for (auto& [process, lane] : lane_of) {
    lane = static_cast<int>(t.lanes.size());
    t.lanes.push_back("p" + std::to_string(process));
  }
  const std::set<std::size_t> stuck(lin.stuck.begin(), lin.stuck.end());
  std::uint64_t t0 = UINT64_MAX;
  for (const auto& op : history) t0 = std::min(t0, op.invoke_ns);
  for (std::size_t i = 0; i < history.size(); ++i) {
    const HistoryOp& op = history[i];
    Timeline::Bar b;
    b.lane = lane_of[op.process];
    b.start = op.invoke_ns;
    b.end = op.response_ns;
    const std::string prio(shm::to_string(op.priority));
    const std::string id = "#" + std::to_string(op.id);
    if (op.kind == HistoryOp::Kind::Write) {
      b.label = "w " + prio.substr(0, 1) + " " + id;
      b.detail = "write " + prio + " " + id + " -> " + (op.ghost ? "unknown (died or not sent)" : op.ok ? "ok" : "Full");
      b.look = op.ghost ? Timeline::Bar::Look::Ghost : op.ok ? Timeline::Bar::Look::Write : Timeline::Bar::Look::Refused;
    } else {
      b.label = op.ok ? "r " + id : "r Empty";
      b.detail = op.ok ? "read -> " + prio + " " + id + " seq " + std::to_string(op.sequence) : "read -> Empty";
      b.look = op.ok ? Timeline::Bar::Look::Read : Timeline::Bar::Look::Refused;
    }
    b.detail += " [" + std::to_string((op.invoke_ns - t0) / 1000) + " .. " +
                (op.response_ns == ~0ULL ? std::string("never") : std::to_string((op.response_ns - t0) / 1000)) + " us]";
    if (stuck.count(i)) {
      b.look = Timeline::Bar::Look::Broke;
      b.detail += " — none of the highlighted operations can come next after the longest valid prefix";
    }
    t.bars.push_back(std::move(b));
  }
  return t;
}

std::string sequence_violation(const std::vector<HistoryOp>& history) {
  std::map<std::uint64_t, std::uint64_t> writer_of;  // id -> process
  std::map<std::uint64_t, std::uint64_t> invoked;    // id -> invoke time
  for (const auto& op : history)
    if (op.kind == HistoryOp::Kind::Write && op.ok) {
      writer_of[op.id] = static_cast<std::uint64_t>(op.process);
      invoked[op.id] = op.invoke_ns;
    }
  // T-SEQ numbers a message by its position in its ring: unique per ring,
  // growing per writer and ring.
  using Ring = shm::Priority;
  std::map<std::pair<Ring, std::uint64_t>, std::uint64_t> owner;  // (ring, sequence) -> id
  std::map<std::pair<std::uint64_t, Ring>, std::vector<std::pair<std::uint64_t, std::uint64_t>>>
      per_writer;  // invoke, sequence
  for (const auto& op : history) {
    if (op.kind != HistoryOp::Kind::Read || !op.ok) continue;
    auto [it, fresh] = owner.emplace(std::pair{op.priority, op.sequence}, op.id);
    if (!fresh && it->second != op.id)
      return "messages #" + std::to_string(it->second) + " and #" + std::to_string(op.id) +
             " carry the same sequence number " + std::to_string(op.sequence) + " in the " +
             std::string(shm::to_string(op.priority)) + " ring";
    if (writer_of.count(op.id)) per_writer[{writer_of[op.id], op.priority}].push_back({invoked[op.id], op.sequence});
  }
  for (auto& [writer_ring, seqs] : per_writer) {
    const std::uint64_t writer = writer_ring.first;
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 1; i < seqs.size(); ++i)
      if (seqs[i].second <= seqs[i - 1].second)
        return "writer p" + std::to_string(writer) + " wrote sequence " + std::to_string(seqs[i - 1].second) +
               " and then " + std::to_string(seqs[i].second);
  }
  return "";
}

std::set<ClauseId> clauses_seen(const std::vector<HistoryOp>& history, bool sequences) {
  std::map<std::uint64_t, const HistoryOp*> write_of, read_of;  // by message id
  for (const auto& op : history) {
    if (op.kind == Kind::Write && op.ok) write_of[op.id] = &op;
    if (op.kind == Kind::Read && op.ok) read_of[op.id] = &op;
  }
  std::set<ClauseId> seen;
  std::map<std::pair<int, shm::Priority>, int> per_writer_ring;  // deliveries
  std::map<shm::Priority, std::set<int>> writers_of_ring;
  std::map<shm::Priority, int> per_ring;
  for (const auto& [id, read] : read_of) {
    const auto w = write_of.find(id);
    if (w == write_of.end()) continue;
    seen.insert(ClauseId::S_PUBLISH);
    ++per_writer_ring[{w->second->process, read->priority}];
    writers_of_ring[read->priority].insert(w->second->process);
    ++per_ring[read->priority];
  }
  for (const auto& [key, n] : per_writer_ring)
    if (n >= 2) seen.insert(ClauseId::R_FIFO);  // two deliveries from one writer on one ring
  for (const auto& [ring, writers] : writers_of_ring)
    if (writers.size() >= 2) seen.insert(ClauseId::R_ROLES);  // producers in several threads or processes
  for (const auto& [ring, n] : per_ring)
    if (n >= 2 && sequences) seen.insert(ClauseId::T_SEQ);
  for (const auto& op : history) {
    if (op.kind == Kind::Write && !op.ok && !op.ghost) seen.insert(ClauseId::R_CAPACITY);  // a full ring refused
    if (op.kind != Kind::Read) continue;
    for (const auto& [id, w] : write_of) {
      // R-VISIBLE: a read that overlapped a write it could not be sure to see.
      if (w->invoke_ns < op.response_ns && op.invoke_ns < w->response_ns) seen.insert(ClauseId::R_VISIBLE);
      // R-ORDER: a read that chose among priorities: a message of another
      // priority than the one it returned was written before it began and
      // delivered after it ended.
      const auto r = read_of.find(id);
      if (op.ok && w->priority != op.priority && w->response_ns < op.invoke_ns && r != read_of.end() &&
          r->second->invoke_ns > op.response_ns)
        seen.insert(ClauseId::R_ORDER);
    }
  }
  // R-CLAIM: two acknowledged, delivered writes to one ring that overlapped.
  for (const auto& [a, wa] : write_of)
    for (const auto& [b, wb] : write_of)
      if (a < b && wa->priority == wb->priority && wa->invoke_ns < wb->response_ns && wb->invoke_ns < wa->response_ns &&
          read_of.count(a) && read_of.count(b))
        seen.insert(ClauseId::R_CLAIM);
  return seen;
}

HistoryVerdict judge_history(const std::vector<HistoryOp>& history, const LinearizabilityResult& lin,
                             const std::string& where, const std::string& unexpected, const std::string& seq) {
  std::size_t acked = 0, delivered = 0;
  for (const auto& op : history) {
    acked += op.kind == HistoryOp::Kind::Write && op.ok;
    delivered += op.kind == HistoryOp::Kind::Read && op.ok;
  }
  HistoryVerdict v;
  std::map<std::uint64_t, int> times;  // deliveries per message
  for (const auto& op : history)
    if (op.kind == HistoryOp::Kind::Read && op.ok) ++times[op.id];
  const auto twice = std::find_if(times.begin(), times.end(), [](const auto& t) { return t.second > 1; });
  if (!unexpected.empty()) {
    v.violation = Violation{ClauseId::R_RELEASE, where + ": an operation on a healthy ring failed: " + unexpected};
  } else if (twice != times.end()) {
    // Nobody died here: a message delivered again was never released.
    v.violation =
        Violation{ClauseId::R_RELEASE, where + ": message #" + std::to_string(twice->first) + " was delivered " +
                                           std::to_string(twice->second) + " times, though no reader died holding it"};
  } else if (acked > delivered) {
    v.violation = Violation{ClauseId::S_PUBLISH,
                            where + ": " + std::to_string(acked - delivered) +
                                " acknowledged writes were never delivered to the other process (" +
                                std::to_string(acked) + " acknowledged, " + std::to_string(delivered) + " delivered)"};
  } else if (!seq.empty()) {
    v.violation = Violation{ClauseId::T_SEQ, where + ": " + seq};
  } else if (!lin.decided) {
    return v;  // undecided: neither a pass nor a failure (the check counts it)
  } else if (!lin.linearizable) {
    v.violation =
        Violation{ClauseId::R_VISIBLE,
                  where + " is not linearizable against R-CAPACITY, R-FIFO, R-ORDER and R-VISIBLE: " + lin.explanation};
  } else {
    return v;
  }
  const std::string text = format_history(history);
  for (std::size_t start = 0, nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    v.lines.push_back(text.substr(start, nl - start));
  return v;
}

}  // namespace memlink::conformance
