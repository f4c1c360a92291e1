#include "memlink/shm/priority.hpp"

namespace memlink::shm {

std::optional<Priority> priority_from_string(std::string_view s) noexcept {
  for (Priority p : kAllPriorities) {
    if (s == to_string(p)) return p;
  }
  return std::nullopt;
}

}  // namespace memlink::shm
