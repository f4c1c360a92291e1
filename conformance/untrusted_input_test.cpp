// SPEC 9b for the runner: what a driver prints and what another user plants
// beside the suite's files. Text is made valid UTF-8 and cut on character
// boundaries before it reaches a report; a driver's stderr is kept in memory,
// bounded; segment files are read and copied without following a link or
// blocking on a FIFO.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <variant>

#include "driver_answer.hpp"
#include "driver_json.hpp"
#include "driver_process.hpp"
#include "segment_fields.hpp"
#include "stderr_tail.hpp"

namespace memlink::conformance {
namespace {

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = driver::utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

TEST(DriverText, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  const std::string bad = std::string("ok \xff\xfe ") + "\xc3" + " \xed\xa0\x80 \xc0\xaf end";
  const std::string out = driver::printable_utf8(bad);
  EXPECT_TRUE(valid_utf8(out)) << out;
  EXPECT_EQ(out.rfind("ok ", 0), 0u);
  EXPECT_NE(out.find(" end"), std::string::npos);
  EXPECT_NE(out.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(driver::printable_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(DriverText, AClipNeverSplitsACharacter) {
  // A two-byte character at bytes 299-300, where a report clips at 300.
  const std::string line = std::string(299, 'x') + "\xc3\xa9" + " and more";
  const std::string out = driver::printable_utf8(line, 300);
  EXPECT_TRUE(valid_utf8(out));
  EXPECT_EQ(out, std::string(299, 'x') + "...");
  EXPECT_EQ(driver::printable_utf8(line, 301), std::string(299, 'x') + "\xc3\xa9...");
}

// parse_answer: each way an answer line can break D-FRAME or D-ERRORS is
// named with its rule; nothing throws (the runner used to abort on a type
// error, issue 30 item 6).
TEST(DriverAnswer, EachBrokenFrameIsNamedWithItsRule) {
  using driver::AnswerFault;
  const struct {
    const char* line;
    spec::DriverRule rule;
    const char* says;
  } cases[] = {
      {"not json", spec::DriverRule::D_FRAME, "not JSON"},
      {"{\"id\":1,\"ok\":true,\"x\":\"\xff\"}", spec::DriverRule::D_FRAME, "not JSON"},
      {"[1,2]", spec::DriverRule::D_FRAME, "not a JSON object"},
      {"{\"id\":1}", spec::DriverRule::D_FRAME, "boolean \"ok\""},
      {"{\"id\":1,\"ok\":1}", spec::DriverRule::D_FRAME, "boolean \"ok\""},
      {"{\"id\":\"1\",\"ok\":true}", spec::DriverRule::D_FRAME, "(not an integer)"},
      {"{\"id\":2,\"ok\":true}", spec::DriverRule::D_FRAME, "the request had 1"},
      {"{\"ok\":true}", spec::DriverRule::D_FRAME, "(none)"},
      {"{\"id\":1,\"ok\":false}", spec::DriverRule::D_ERRORS, "names no \"error\""},
      {"{\"id\":1,\"ok\":false,\"error\":5}", spec::DriverRule::D_ERRORS, "not the name of an error code"},
      {"{\"id\":1,\"ok\":true,\"detail\":[1]}", spec::DriverRule::D_ERRORS, "not a string"},
  };
  for (const auto& c : cases) {
    const auto answer = driver::parse_answer(c.line, 1);
    const auto* fault = std::get_if<AnswerFault>(&answer);
    ASSERT_NE(fault, nullptr) << c.line << " was accepted";
    EXPECT_EQ(fault->rule, c.rule) << c.line;
    EXPECT_NE(fault->what.find(c.says), std::string::npos) << c.line << ": " << fault->what;
  }
  const auto fine = driver::parse_answer("{\"id\":1,\"ok\":false,\"error\":\"Empty\",\"detail\":\"nothing\"}", 1);
  ASSERT_NE(std::get_if<nlohmann::json>(&fine), nullptr);
}

// Numbers a driver sends are integers its field can hold; a slot's state is
// a byte, garbage included (a peer's corruption is part of the view: the
// first range check, 0..4, failed correct code).
TEST(DriverAnswer, NumbersAreCheckedAgainstTheirFieldNotTheHappyPath) {
  auto view = driver::view_to_json(model::Model::create(model::Config{4096 + 2 * (3 * 192 + 4 * 128), 64, 1})->view());
  view["rings"][0][0]["slots"] = {0, 238, 255};
  EXPECT_EQ(static_cast<int>(driver::view_from_json(view).rings[0][0].slots[1]), 238);
  for (const nlohmann::json bad : {nlohmann::json(256), nlohmann::json(-1), nlohmann::json(1.5), nlohmann::json("2")}) {
    view["rings"][0][0]["slots"] = {bad};
    EXPECT_THROW(driver::view_from_json(view), nlohmann::json::type_error) << bad.dump();
  }
  const nlohmann::json answer = {{"priority", 7}, {"sequence", -1}, {"length", 1e20}};
  EXPECT_THROW(driver::priority(answer), nlohmann::json::type_error);
  EXPECT_THROW(driver::integer_or<std::uint64_t>(answer, "sequence", 0), nlohmann::json::type_error);
  EXPECT_THROW(driver::integer<std::uint32_t>(answer, "length"), nlohmann::json::type_error);
  EXPECT_EQ(driver::integer_or<std::uint64_t>(answer, "absent", 9), 9u);
  EXPECT_EQ(driver::priority({{"priority", 2}}), shm::Priority::Low);
}

// A value nested millions deep (a line of 8 MiB can) is described, not
// dumped: nlohmann's serializer recurses once a level.
TEST(DriverAnswer, AValueNestedMillionsDeepIsShownWithoutRecursing) {
  const std::size_t depth = 1'000'000;
  const std::string line = "{\"ok\":true,\"id\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  const auto answer = driver::parse_answer(line, 1);
  const auto* fault = std::get_if<driver::AnswerFault>(&answer);
  ASSERT_NE(fault, nullptr);
  EXPECT_NE(fault->what.find("nested deeper than"), std::string::npos) << fault->what;
  EXPECT_LT(fault->what.size(), 400u);
}

// A driver failure reported beside its rule does not repeat it ("[D-FRAME]
// driver ...: [D-FRAME] ..." before).
TEST(DriverAnswer, AFailureTextCarriesItsRuleOnce) {
  const driver::DriverFailure e("driver 'x': [D-FRAME] bad", spec::DriverRule::D_FRAME, "driver 'x': bad");
  EXPECT_EQ(std::string(e.text()), "driver 'x': bad");
  EXPECT_NE(std::string(e.what()).find("[D-FRAME]"), std::string::npos);
  const driver::DriverFailure plain("no tag here", spec::DriverRule::D_PROC);
  EXPECT_EQ(std::string(plain.text()), "no tag here");
}

TEST(DriverText, AStderrFloodKeepsOnlyItsLastBytes) {
  driver::StderrTail tail(1024);
  const int w = ::dup(tail.write_end());
  tail.start();
  const std::string chunk(4096, 'a');
  for (int i = 0; i < 1024; ++i) ASSERT_EQ(::write(w, chunk.data(), chunk.size()), 4096);  // 4 MiB
  ASSERT_EQ(::write(w, "the end\n", 8), 8);
  ::close(w);
  tail.wait_for_end();
  EXPECT_EQ(tail.total_bytes(), 4u * 1024 * 1024 + 8);
  const std::string last = tail.tail(1 << 20);
  EXPECT_EQ(last.size(), 1024u);  // never more than its capacity
  EXPECT_EQ(last.substr(last.size() - 8), "the end\n");
}

struct Dir {
  std::string path;
  Dir() {
    char t[] = "/tmp/memlink-untrusted-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~Dir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
};

TEST(SegmentFiles, ACopyIsNeverWrittenThroughAPlantedLink) {
  Dir d;
  const std::string victim = d.path + "/victim", copy = d.path + "/seg.copy";
  std::ofstream(victim) << "precious";
  ASSERT_EQ(::symlink(victim.c_str(), copy.c_str()), 0);
  const std::vector<std::byte> bytes(100, std::byte{7});
  std::string error;
  ASSERT_TRUE(write_segment_copy(copy, bytes, error)) << error;
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  struct stat st {};
  ASSERT_EQ(::lstat(copy.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_segment_file(copy), bytes);
}

TEST(SegmentFiles, ALinkOrAFifoReadsAsNothingWithoutBlocking) {
  Dir d;
  const std::string target = d.path + "/target", link = d.path + "/link", fifo = d.path + "/fifo";
  std::ofstream(target) << "bytes";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(read_segment_file(link).empty());
  EXPECT_TRUE(read_segment_file(fifo).empty());  // returns: nobody writes the FIFO
  EXPECT_EQ(read_segment_file(target).size(), 5u);
}

}  // namespace
}  // namespace memlink::conformance
