// The one JUnit XML writer of this repository (the conformance runner's
// --junit and memlink-chaos's --junit): a suite of test cases written as
//
//   <testsuites tests= failures= errors= skipped=>
//     <testsuite name= tests= failures= errors= skipped= [time=]>
//       <testcase name= classname= [time=]>[<failure message=>text</failure>]
//         [<skipped message=/>][<system-out>text</system-out>]</testcase>
//
// Every attribute and text is escaped: & < > " ' as entities, and the bytes
// XML 1.0 cannot carry at all (control characters other than tab, line feed
// and carriage return, invalid UTF-8, U+FFFE/U+FFFF) replaced, so a
// violation, a counterexample or a driver's output always gives a
// well-formed file.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memlink::conformance::junit {

struct Failure {
  std::string message;  // the message attribute: one line
  std::string text;     // the body: details, counterexample, replay command
};

struct TestCase {
  std::string name;
  std::string classname;
  std::optional<double> time_s;        // the time attribute, when measured
  std::vector<Failure> failures;       // empty: the case passed (or was skipped)
  std::optional<std::string> skipped;  // <skipped message="..."/>
  std::string system_out;              // <system-out>, when not empty
};

struct Suite {
  std::string name;
  std::optional<double> time_s;
  std::vector<TestCase> cases;
  std::size_t failures() const;  // cases with a failure
  std::size_t skipped() const;   // cases skipped
};

// `s` safe as XML 1.0 character data. A forbidden control character becomes
// the text \xNN, invalid UTF-8 or a noncharacter becomes U+FFFD; carriage
// return becomes &#13; (a parser would turn a literal one into a line feed).
std::string escape_text(std::string_view s);
// The same for an attribute value, where tab, line feed and carriage return
// are written as character references (a parser would turn them into spaces).
std::string escape_attribute(std::string_view s);

// The whole document, XML declaration first.
std::string to_xml(const Suite& suite);
// Writes to_xml(suite) to `path`; false if it could not be written.
bool write(const std::string& path, const Suite& suite);

}  // namespace memlink::conformance::junit
