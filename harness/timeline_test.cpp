// The picture of a failing history: the operation where the spec breaks is
// found and drawn as such, kills are marked, and the page is self-contained
// and deterministic.
#include "timeline.hpp"

#include <gtest/gtest.h>

#include "linearizability.hpp"

namespace memlink::conformance {
namespace {

using P = shm::Priority;
constexpr std::array<std::uint32_t, 3> kCap{2, 2, 2};

HistoryOp op(HistoryOp::Kind k, int proc, std::uint64_t id, std::uint64_t a, std::uint64_t b) {
  HistoryOp o;
  o.kind = k;
  o.process = proc;
  o.priority = P::High;
  o.id = id;
  o.ok = true;
  o.invoke_ns = a;
  o.response_ns = b;
  return o;
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// #1 then #2 written one after the other, #2 read first: R-FIFO breaks at
// the read of #2, after the two writes.
std::vector<HistoryOp> out_of_order() {
  return {op(HistoryOp::Kind::Write, 1, 1, 0, 1000), op(HistoryOp::Kind::Write, 2, 2, 2000, 3000),
          op(HistoryOp::Kind::Read, 0, 2, 4000, 5000), op(HistoryOp::Kind::Read, 0, 1, 6000, 7000)};
}

TEST(Timeline, TheCheckerNamesWhereTheHistoryBreaks) {
  const auto lin = check_linearizable(out_of_order(), kCap);
  ASSERT_FALSE(lin.linearizable);
  EXPECT_EQ(lin.prefix, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(lin.stuck, (std::vector<std::size_t>{2})) << "the read of #2 is where it breaks";
  EXPECT_TRUE(check_linearizable({out_of_order()[0], out_of_order()[3]}, kCap).stuck.empty());
}

TEST(Timeline, ThePageShowsLanesBarsTheBreakAndTheKills) {
  const auto h = out_of_order();
  Timeline t =
      history_timeline(h, check_linearizable(h, kCap), "a <title>", "R-FIFO", "scripts/conformance --only x & y");
  t.marks.push_back({1, 1500, "killed (kill -9)", true});
  t.marks.push_back({0, 5500, "restarted", false});
  const std::string page = render_timeline_html(t);
  EXPECT_EQ(t.lanes, (std::vector<std::string>{"p0", "p1", "p2"}));
  EXPECT_EQ(count(page, "<rect x=") - count(page, "<rect x=\"0\""), 4u) << "one bar per operation";
  EXPECT_EQ(count(page, "stroke=\"#8b0000\""), 1u) << "one operation drawn as the break";
  EXPECT_NE(page.find("read -&gt; high #2"), std::string::npos) << "the break's tooltip names it";
  EXPECT_EQ(count(page, "stroke=\"#c00\""), 1u) << "one kill";
  EXPECT_NE(page.find("restarted"), std::string::npos);
  EXPECT_NE(page.find("a &lt;title&gt;"), std::string::npos) << "text is escaped";
  EXPECT_NE(page.find("--only x &amp; y"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos) << "self-contained, no scripts";
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg")) << "no links but the SVG namespace";
  EXPECT_EQ(page, render_timeline_html(t)) << "deterministic";
}

TEST(Timeline, AnOperationThatNeverReturnedRunsToTheEdge) {
  auto h = out_of_order();
  h[1].response_ns = ~0ULL;
  h[1].ghost = true;
  const std::string page = render_timeline_html(history_timeline(h, check_linearizable(h, kCap), "t", "R-FIFO", "r"));
  EXPECT_NE(page.find("fill-opacity=\"0.45\""), std::string::npos);
  EXPECT_NE(page.find("never"), std::string::npos);
}

TEST(Timeline, AWindowLeavesOutWhatLiesOutsideAndCutsWhatCrossesIt) {
  Timeline t;
  t.lanes = {"a"};
  t.bars = {{0, 0, 100, "early", "early", Timeline::Bar::Look::Write},
            {0, 900, 1100, "across", "across", Timeline::Bar::Look::Read},
            {0, 5000, 6000, "late", "late", Timeline::Bar::Look::Write}};
  t.marks = {{0, 50, "killed early", true}, {0, 1000, "killed inside", true}};
  t.from = 1000;
  t.to = 2000;
  const std::string page = render_timeline_html(t);
  EXPECT_EQ(page.find(">early<"), std::string::npos);
  EXPECT_EQ(page.find("<title>late</title>"), std::string::npos);
  EXPECT_NE(page.find("<title>across</title>"), std::string::npos);
  EXPECT_EQ(page.find("killed early"), std::string::npos);
  EXPECT_NE(page.find("killed inside"), std::string::npos);
}

}  // namespace
}  // namespace memlink::conformance
