// The JUnit writer (junit.hpp): the root element, a passing and a failing
// case, and escaping that keeps any message well-formed XML 1.0.
#include "junit.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace memlink::conformance::junit {
namespace {

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

Suite two_cases() {
  Suite s{"suite <&>", 1.5, {}};
  s.cases.push_back({"passes", "SPEC", 0.25, {}, std::nullopt, ""});
  TestCase failing{"R-ORDER \"order\"", "SPEC", std::nullopt, {}, std::nullopt, "replay: scripts/x --seed 1\n"};
  failing.failures.push_back({"read 'x' < y & z", "line one\nline <two> & ]]> three"});
  s.cases.push_back(failing);
  s.cases.push_back({"not covered", "SPEC", std::nullopt, {}, std::string("NOT COVERED: no check"), ""});
  return s;
}

TEST(Junit, TheRootIsTestsuitesAroundOneTestsuiteWithItsCounts) {
  const std::string x = to_xml(two_cases());
  EXPECT_EQ(x.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"3\" failures=\"1\" errors=\"0\" "
                    "skipped=\"1\">\n  <testsuite name=\"suite &lt;&amp;&gt;\" tests=\"3\" failures=\"1\" errors=\"0\" "
                    "skipped=\"1\" time=\"1.500\">\n",
                    0),
            0u)
      << x;
  const std::string tail = "\n  </testsuite>\n</testsuites>\n";
  EXPECT_EQ(x.substr(x.size() - tail.size()), tail);
  EXPECT_EQ(count_of(x, "<testcase "), 3u);
  EXPECT_EQ(count_of(x, "<testsuite "), 1u);
}

TEST(Junit, APassingCaseIsAnEmptyElement) {
  const std::string x = to_xml(two_cases());
  EXPECT_NE(x.find("<testcase name=\"passes\" classname=\"SPEC\" time=\"0.250\"/>"), std::string::npos) << x;
}

TEST(Junit, AFailingCaseCarriesItsMessageTextAndOutput) {
  const std::string x = to_xml(two_cases());
  EXPECT_NE(x.find("<testcase name=\"R-ORDER &quot;order&quot;\" classname=\"SPEC\">"), std::string::npos) << x;
  EXPECT_NE(x.find("<failure message=\"read &apos;x&apos; &lt; y &amp; z\">line one\nline &lt;two&gt; &amp; ]]&gt; "
                   "three</failure>"),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("<system-out>replay: scripts/x --seed 1\n</system-out>"), std::string::npos) << x;
  EXPECT_NE(x.find("<skipped message=\"NOT COVERED: no check\"/>"), std::string::npos) << x;
}

TEST(Junit, EscapesWhatXmlCannotCarryRaw) {
  EXPECT_EQ(escape_text("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  // Control characters XML 1.0 forbids even as references become visible text.
  EXPECT_EQ(escape_text(std::string("nul\0bel\x07"
                                    "esc\x1b"
                                    "ff\x0c",
                                    15)),
            "nul\\x00bel\\x07esc\\x1Bff\\x0C");
  // Tab and line feed stay in text; in an attribute they (and carriage
  // return, everywhere) are references, so a parser keeps them.
  EXPECT_EQ(escape_text("a\tb\nc\rd"), "a\tb\nc&#13;d");
  EXPECT_EQ(escape_attribute("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
  // UTF-8 passes; invalid bytes, an overlong form, a surrogate and U+FFFE become U+FFFD.
  EXPECT_EQ(escape_text("caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x98\x80");
  EXPECT_EQ(escape_text("x\xFFy\xC0\xAFz\xED\xA0\x80w\xEF\xBF\xBE"),
            "x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDw\xEF\xBF\xBD\xEF\xBF\xBD\xEF"
            "\xBF\xBD");
  EXPECT_EQ(escape_text("cut \xE2\x86"), "cut \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Junit, WritesTheFileAndEveryByteOfAnyMessageStaysWellFormed) {
  std::string every;
  for (int c = 1; c < 256; ++c) every += static_cast<char>(c);
  every += std::string(1, '\0');
  Suite s{"all bytes", std::nullopt, {}};
  s.cases.push_back({every, every, 0.0, {{every, every}}, every, every});
  const auto path =
      (std::filesystem::temp_directory_path() / ("junit_test_" + std::to_string(::getpid()) + ".xml")).string();
  ASSERT_TRUE(write(path, s));
  std::stringstream got;
  got << std::ifstream(path, std::ios::binary).rdbuf();
  std::filesystem::remove(path);
  const std::string x = got.str();
  EXPECT_EQ(x, to_xml(s));
  for (char c : x) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 || u == '\n' || u == '\t') << "raw byte " << int(u);  // a raw carriage return never
  }
  // Markup characters of the message appear only escaped: the elements
  // are the writer's own.
  EXPECT_EQ(count_of(x, "<failure "), 1u);
  EXPECT_EQ(count_of(x, "</failure>"), 1u);
  EXPECT_EQ(count_of(x, "<system-out>"), 1u);
  // With python3 at hand, an XML parser agrees (skipped if there is none).
  if (std::system("python3 -c 'import xml.etree.ElementTree' >/dev/null 2>&1") == 0) {
    ASSERT_TRUE(write(path, s));
    const std::string cmd =
        "python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
        "assert r.tag == 'testsuites' and r[0].tag == 'testsuite' and r[0][0].get('name') is not None; "
        "assert r[0][0].find('failure').text.startswith(chr(92) + 'x01')\" " +
        path;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace memlink::conformance::junit
