#include "junit.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>

#include "driver_json.hpp"

namespace memlink::conformance::junit {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// The length of the well-formed UTF-8 sequence at s[i] that encodes a
// character XML 1.0 allows (not U+FFFE or U+FFFF), or 0.
std::size_t allowed_sequence(std::string_view s, std::size_t i) {
  std::uint32_t cp = 0;
  const std::size_t len = driver::utf8_sequence(s, i, &cp);
  return len > 0 && cp != 0xFFFE && cp != 0xFFFF ? len : 0;
}

std::string escape(std::string_view s, bool attribute) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t len = allowed_sequence(s, i);
      if (len == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;
      case '\n': out += attribute ? "&#10;" : "\n"; break;
      case '\t': out += attribute ? "&#9;" : "\t"; break;
      default:
        if (c < 0x20) {  // a control character XML 1.0 has no form for, not even &#N;
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02X", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

std::string seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", s);
  return b;
}

std::string attr(const char* name, std::string_view value) {
  return std::string(" ") + name + "=\"" + escape_attribute(value) + "\"";
}

std::string counts(std::size_t tests, std::size_t failures, std::size_t skipped) {
  return attr("tests", std::to_string(tests)) + attr("failures", std::to_string(failures)) + attr("errors", "0") +
         attr("skipped", std::to_string(skipped));
}

std::string test_case(const TestCase& c) {
  std::string x = "    <testcase" + attr("name", c.name) + attr("classname", c.classname);
  if (c.time_s) x += attr("time", seconds(*c.time_s));
  if (c.failures.empty() && !c.skipped && c.system_out.empty()) return x + "/>\n";
  x += ">";
  for (const Failure& f : c.failures)
    x += "\n      <failure" + attr("message", f.message) + ">" + escape_text(f.text) + "</failure>";
  if (c.skipped) x += "\n      <skipped" + attr("message", *c.skipped) + "/>";
  if (!c.system_out.empty()) x += "\n      <system-out>" + escape_text(c.system_out) + "</system-out>";
  return x + "\n    </testcase>\n";
}

}  // namespace

std::size_t Suite::failures() const {
  std::size_t n = 0;
  for (const TestCase& c : cases) n += !c.failures.empty();
  return n;
}

std::size_t Suite::skipped() const {
  std::size_t n = 0;
  for (const TestCase& c : cases) n += c.skipped.has_value();
  return n;
}

std::string escape_text(std::string_view s) { return escape(s, false); }
std::string escape_attribute(std::string_view s) { return escape(s, true); }

std::string to_xml(const Suite& suite) {
  const std::string n = counts(suite.cases.size(), suite.failures(), suite.skipped());
  std::string x =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites" + n + ">\n  <testsuite" + attr("name", suite.name) + n;
  if (suite.time_s) x += attr("time", seconds(*suite.time_s));
  x += ">\n";
  for (const TestCase& c : suite.cases) x += test_case(c);
  return x + "  </testsuite>\n</testsuites>\n";
}

bool write(const std::string& path, const Suite& suite) {
  std::ofstream out(path, std::ios::binary);
  out << to_xml(suite);
  out.flush();
  return out.good();
}

}  // namespace memlink::conformance::junit
