// A failing chaos run as a picture (harness/timeline.hpp): one lane per
// process the runner started, a bar for its life, a cross where it was
// killed (by the runner, or at a crash point), the daemons' start of
// service marked, and the message the first violation names — its write
// from intent to acknowledgement, each delivery of it — highlighted.
#pragma once

#include <string>
#include <vector>

#include "history.hpp"
#include "timeline.hpp"

namespace memlink::chaos {

// What the runner knows of a process beyond its log.
struct ProcessLife {
  std::uint64_t started_ns = 0;
  std::uint64_t ended_ns = 0;  // when the runner saw it end (0: unknown, its last record is taken)
  std::string death;  // "" if it exited cleanly or still ran at the end; else how it died
};

// logs[i] and lives[i] are the same process.
conformance::Timeline chaos_timeline(const std::vector<ProcessLog>& logs, const std::vector<ProcessLife>& lives,
                                     const std::string& violation, const std::string& replay);

}  // namespace memlink::chaos
