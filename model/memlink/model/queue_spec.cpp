#include "memlink/model/queue_spec.hpp"

namespace memlink::model {

// R-CAPACITY: a write is refused (Full) exactly when its ring is full; a
// ghost takes a position only where there is room for one.
bool QueueSpec::write(State& s, const QueueOp& op, std::size_t self) const {
  auto& q = s.queued[std::size_t(op.priority)];
  const bool full = rules::full(q.size(), capacity_[std::size_t(op.priority)]);
  if (!op.ghost && !op.ok) return full;
  if (full) return false;
  q.push_back(Entry{self, op.id, op.ghost});
  return true;
}

bool QueueSpec::reclaim_ghost(State& s, shm::Priority p) const {
  auto& q = s.queued[std::size_t(p)];
  if (q.empty() || !q.front().ghost) return false;
  q.pop_front();
  return true;
}

std::string QueueSpec::describe(const State& s) const {
  std::string out;
  for (shm::Priority p : shm::kAllPriorities) {
    out += (out.empty() ? "" : "; ") + std::string(shm::to_string(p)) + ":";
    for (const Entry& e : s.queued[std::size_t(p)]) out += " #" + std::to_string(e.id) + (e.ghost ? "(ghost)" : "");
  }
  return out;
}

std::string QueueSpec::describe(const QueueOp& op) {
  const std::string prio(shm::to_string(op.priority));
  if (op.kind == QueueOp::Kind::Write)
    return "write " + prio + " #" + std::to_string(op.id) + (op.ghost ? " -> unknown" : op.ok ? " -> ok" : " -> Full");
  return op.ok ? "read -> " + prio + " #" + std::to_string(op.id) : "read -> Empty";
}

}  // namespace memlink::model
