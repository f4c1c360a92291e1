#include "timeline.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace memlink::conformance {
namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

const char* fill(Timeline::Bar::Look l) {
  switch (l) {
    case Timeline::Bar::Look::Write: return "#4e79a7";
    case Timeline::Bar::Look::Read: return "#59a14f";
    case Timeline::Bar::Look::Refused: return "#bab0ac";
    case Timeline::Bar::Look::Ghost: return "#d4c6e8";
    case Timeline::Bar::Look::Broke: return "#e15759";
    case Timeline::Bar::Look::Alive: return "#dfe6ee";
  }
  return "#999";
}

constexpr double kLeft = 110, kRight = 40, kTop = 50, kLane = 50, kBar = 26, kWidth = 1200;

}  // namespace

std::string escape_markup(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// The part of `whole` within its window [from, to], if it has one.
Timeline clipped(const Timeline& whole) {
  Timeline t = whole;
  if (t.to > t.from) {
    std::vector<Timeline::Bar> bars;
    for (Timeline::Bar b : t.bars) {
      const std::uint64_t end = b.end == ~0ULL ? t.to : b.end;
      if (end < t.from || b.start > t.to) continue;
      b.start = std::max(b.start, t.from);
      if (b.end != ~0ULL) b.end = std::min(b.end, t.to);
      bars.push_back(std::move(b));
    }
    t.bars = std::move(bars);
    std::erase_if(t.marks, [&](const Timeline::Mark& m) { return m.at < t.from || m.at > t.to; });
  }
  return t;
}

// Where a time goes on the plot.
struct Scale {
  std::uint64_t t0 = 0;
  double span = 1, plot = kWidth - kLeft - kRight;
  double x(std::uint64_t v) const { return kLeft + plot * static_cast<double>(v - t0) / span; }
};

Scale scale_of(const Timeline& t) {
  std::uint64_t t0 = UINT64_MAX, t1 = 0;
  for (const auto& b : t.bars) {
    t0 = std::min(t0, b.start);
    t1 = std::max(t1, b.end == ~0ULL ? b.start : b.end);
  }
  for (const auto& m : t.marks) {
    t0 = std::min(t0, m.at);
    t1 = std::max(t1, m.at);
  }
  if (t0 == UINT64_MAX) t0 = t1 = 0;
  Scale sc;
  sc.t0 = t0;
  sc.span = std::max<double>(1, static_cast<double>(t1 - t0));
  return sc;
}

// One shaded row, with its name, per lane.
std::string svg_lanes(const Timeline& t) {
  std::string svg;
  for (std::size_t i = 0; i < t.lanes.size(); ++i) {
    const double y = kTop + kLane * static_cast<double>(i);
    svg += "<rect x=\"0\" y=\"" + num(y) + "\" width=\"" + num(kWidth) + "\" height=\"" + num(kLane) + "\" fill=\"" +
           (i % 2 ? "#f7f7f7" : "#ffffff") + "\"/>\n";
    svg += "<text x=\"8\" y=\"" + num(y + kLane / 2 + 4) + "\" font-weight=\"bold\">" + escape_markup(t.lanes[i]) +
           "</text>\n";
  }
  return svg;
}

// The time axis: 6 ticks.
std::string svg_axis(const Timeline& t, const Scale& sc) {
  const double span = sc.span, plot = sc.plot;
  std::string svg;
  const double axis_y = kTop + kLane * static_cast<double>(t.lanes.size()) + 14;
  for (int k = 0; k <= 5; ++k) {
    const double v = span * k / 5;
    const double xx = kLeft + plot * k / 5;
    svg += "<line x1=\"" + num(xx) + "\" y1=\"" + num(kTop) + "\" x2=\"" + num(xx) + "\" y2=\"" + num(axis_y - 10) +
           "\" stroke=\"#ddd\"/>\n";
    svg += "<text x=\"" + num(xx) + "\" y=\"" + num(axis_y + 4) + "\" text-anchor=\"middle\" fill=\"#555\">" +
           (t.scale == 1 ? std::to_string(static_cast<std::uint64_t>(v)) : num(v / t.scale)) + " " +
           escape_markup(t.unit) + "</text>\n";
  }
  return svg;
}

// The operations' bars: the broken ones last, on top.
std::string svg_bars(const Timeline& t, const Scale& sc) {
  auto x = [&](std::uint64_t v) { return sc.x(v); };
  std::string svg;
  std::vector<const Timeline::Bar*> order;
  for (const auto& b : t.bars) order.push_back(&b);
  auto layer = [](const Timeline::Bar* b) {
    return b->look == Timeline::Bar::Look::Alive ? 0 : b->look == Timeline::Bar::Look::Broke ? 2 : 1;
  };
  std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) { return layer(a) < layer(b); });
  for (const Timeline::Bar* b : order) {
    const double y = kTop + kLane * b->lane + (kLane - kBar) / 2;
    const bool open = b->end == ~0ULL;
    const double x0 = x(b->start), x1 = open ? kWidth - kRight : std::max(x(b->end), x0 + 3);
    const bool broke = b->look == Timeline::Bar::Look::Broke;
    svg += "<g><title>" + escape_markup(b->detail) + "</title><rect x=\"" + num(x0) + "\" y=\"" + num(y) +
           "\" width=\"" + num(x1 - x0) + "\" height=\"" + num(kBar) + "\" rx=\"3\" fill=\"" + fill(b->look) + "\"" +
           (broke ? " stroke=\"#8b0000\" stroke-width=\"3\"" : "") + (open ? " fill-opacity=\"0.45\"" : "") + "/>";
    if (x1 - x0 > 7.0 * static_cast<double>(b->label.size()))
      svg += "<text x=\"" + num(x0 + 4) + "\" y=\"" + num(y + kBar / 2 + 4) + "\" fill=\"" +
             (b->look == Timeline::Bar::Look::Alive ? "#555" : "#fff") + "\">" + escape_markup(b->label) + "</text>";
    svg += "</g>\n";
  }
  return svg;
}

// Kills and other events.
std::string svg_marks(const Timeline& t, const Scale& sc) {
  auto x = [&](std::uint64_t v) { return sc.x(v); };
  std::string svg;
  for (const auto& m : t.marks) {
    const double xx = x(m.at), y = kTop + kLane * m.lane;
    if (m.kill)
      svg += "<g><title>" + escape_markup(m.label) + "</title><path d=\"M" + num(xx - 7) + " " + num(y + 8) + " L" +
             num(xx + 7) + " " + num(y + kLane - 8) + " M" + num(xx + 7) + " " + num(y + 8) + " L" + num(xx - 7) + " " +
             num(y + kLane - 8) + "\" stroke=\"#c00\" stroke-width=\"3\"/></g>\n";
    else
      svg += "<g><title>" + escape_markup(m.label) + "</title><line x1=\"" + num(xx) + "\" y1=\"" + num(y + 4) +
             "\" x2=\"" + num(xx) + "\" y2=\"" + num(y + kLane - 4) +
             "\" stroke=\"#f28e2b\" stroke-width=\"3\"/></g>\n";
    // Kills labelled under the bars, other events above them: the two
    // often fall close together (a daemon killed just after it began).
    svg += "<text x=\"" + num(xx + 9) + "\" y=\"" + num(m.kill ? y + kLane - 2 : y + 8) + "\" fill=\"" +
           (m.kill ? "#c00" : "#b35900") + "\" font-size=\"11\">" + escape_markup(m.label) + "</text>\n";
  }
  return svg;
}

// A key for each look the picture shows, the kill and the event marks.
std::string legend_html(const Timeline& t) {
  std::set<Timeline::Bar::Look> used;
  for (const auto& b : t.bars) used.insert(b.look);
  std::string legend;
  for (auto [look, name] : std::initializer_list<std::pair<Timeline::Bar::Look, const char*>>{
           {Timeline::Bar::Look::Alive, "process running"},
           {Timeline::Bar::Look::Write, "write"},
           {Timeline::Bar::Look::Read, "read"},
           {Timeline::Bar::Look::Refused, "refused (Full / Empty)"},
           {Timeline::Bar::Look::Ghost, "write of unknown effect (its process died)"},
           {Timeline::Bar::Look::Broke, "where the clause breaks"}}) {
    if (!used.count(look) && look != Timeline::Bar::Look::Broke) continue;  // only what the picture shows
    legend += "<span class=\"key\"><span class=\"sw\" style=\"background:" + std::string(fill(look)) + "\"></span>" +
              name + "</span>";
  }
  if (std::any_of(t.marks.begin(), t.marks.end(), [](const Timeline::Mark& m) { return m.kill; }))
    legend += "<span class=\"key\"><span style=\"color:#c00;font-weight:bold\">&#x2715;</span> process killed</span>";
  if (std::any_of(t.marks.begin(), t.marks.end(), [](const Timeline::Mark& m) { return !m.kill; }))
    legend +=
        "<span class=\"key\"><span style=\"color:#f28e2b;font-weight:bold\">|</span> event (stall, takeover, "
        "start of service)</span>";

  return legend;
}

}  // namespace

std::string render_timeline_html(const Timeline& whole) {
  const Timeline t = clipped(whole);
  const Scale sc = scale_of(t);
  const double height = kTop + kLane * static_cast<double>(t.lanes.size()) + 40;
  const std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" +
                          num(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n" + svg_lanes(t) +
                          svg_axis(t, sc) + svg_bars(t, sc) + svg_marks(t, sc) + "</svg>\n";
  const std::string legend = legend_html(t);
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + escape_markup(t.title) +
         "</title>\n<style>body{font-family:sans-serif;margin:20px;color:#222}"
         "code{background:#f2f2f2;padding:3px 6px;display:inline-block;word-break:break-all}"
         ".key{margin-right:18px;font-size:13px}.sw{display:inline-block;width:14px;height:14px;"
         "margin-right:5px;vertical-align:middle;border-radius:2px}</style></head>\n<body>\n<h2>" +
         escape_markup(t.title) + "</h2>\n<p><b>" + escape_markup(t.clause) + "</b>: " + escape_markup(t.explanation) +
         "</p>\n<p>Replay: <code>" + escape_markup(t.replay) + "</code></p>\n<p>" + legend + "</p>\n" + svg +
         "<p style=\"color:#666;font-size:12px\">One lane per process; each bar runs from the operation's "
         "invocation to its response, as the suite timed them. Hover a bar for its details.</p>\n</body></html>\n";
}

}  // namespace memlink::conformance
