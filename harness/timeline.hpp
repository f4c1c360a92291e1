// A picture of a history: one lane per process, one bar per operation from
// its invocation to its response, kills and restarts marked, the operations
// that broke a clause highlighted, the replay command beside it — a
// self-contained HTML page with an inline SVG (no scripts, no network), in
// the manner of Porcupine's visualizer. Hovering a bar shows its details.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memlink::conformance {

struct Timeline {
  struct Bar {
    int lane = 0;
    std::uint64_t start = 0, end = 0;  // end ~0: never returned (its process died)
    std::string label;                 // drawn on the bar when it fits
    std::string detail;                // the tooltip
    enum class Look : std::uint8_t { Write, Read, Refused, Ghost, Broke, Alive } look = Look::Write;
  };
  struct Mark {
    int lane = 0;
    std::uint64_t at = 0;
    std::string label;  // "killed", "restarted", ...
    bool kill = true;   // a kill (red cross) or another event (a tick)
  };
  std::string title;
  std::string clause;       // the clause broken, e.g. "R-FIFO"
  std::string explanation;  // what broke, in a sentence
  std::string replay;       // the command that replays it
  std::string unit = "us";  // what the time axis counts (times are divided by `scale`)
  // A window [from, to] to draw (both 0: everything): bars and marks
  // outside it are left out, bars across its edges are cut there.
  std::uint64_t from = 0, to = 0;
  double scale = 1000;
  std::vector<std::string> lanes;
  std::vector<Bar> bars;
  std::vector<Mark> marks;
};

// Text made safe inside HTML or XML, in text and in quoted attributes.
std::string escape_markup(const std::string& s);

// The page (UTF-8 HTML); deterministic for a given timeline.
std::string render_timeline_html(const Timeline& t);

}  // namespace memlink::conformance
