// Fuzz target: the input bytes are what a driver printed on its stdout, one
// answer a line, to the requests 0 (hello), 1, 2, ... of a session (SPEC
// 9b: a driver is untrusted input). Each line goes through what the suite's
// runner reads an answer with: parse_answer (DriverProcess::receive),
// then, for an accepted answer, Reply::error, parse_hello for the hello,
// view_from_json for an observe, and the text a report shows of it.
//
// Must hold for any bytes: nothing throws but the documented exceptions
// (DriverFailure from parse_hello, nlohmann::json::exception from
// view_from_json), nothing crashes or recurses without bound; an accepted
// answer has the frame D-FRAME and D-ERRORS promise; a hello accepted gives
// limits that are non-empty ranges; every text meant for a report is valid
// UTF-8 of bounded length (the JSON writer throws on anything else).
#include "driver_answer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "driver_json.hpp"
#include "driver_process.hpp"

using namespace memlink::conformance;
using nlohmann::json;

namespace {

[[noreturn]] void broken(const char* what, std::string_view line) {
  std::fprintf(stderr, "driver_answer: %s\n  line: %s\n", what, driver::printable_utf8(line, 300).c_str());
  std::abort();
}

// What the JSON report writer does with a text: throws unless valid UTF-8.
void must_serialize(const std::string& text, std::string_view line) {
  try {
    (void)json(text).dump();
  } catch (const json::exception&) {
    broken("a text meant for a report is not valid UTF-8", line);
  }
}

void check_hello(const json& body, std::string_view line) {
  driver::Hello h;
  try {
    h = driver::parse_hello(body);
  } catch (const driver::DriverFailure& e) {
    must_serialize(e.text(), line);
    return;
  }
  const driver::Limits& l = h.limits;
  if (l.min_segment > l.max_segment || l.min_slot == 0 || l.min_slot > l.max_slot)
    broken("parse_hello accepted limits that are empty ranges", line);
  for (std::size_t want : {std::size_t{0}, std::size_t{4096}, ~std::size_t{0}}) {
    const std::size_t s = l.segment(want);
    if (s < l.min_segment || s > l.max_segment) broken("Limits::segment left its range", line);
  }
  for (std::uint32_t want : {0U, 64U, ~0U}) {
    const std::uint32_t s = l.slot(want);
    if (s < l.min_slot || s > l.max_slot) broken("Limits::slot left its range", line);
  }
}

void check_accepted(const json& body, std::int64_t id, std::string_view line) {
  if (!body.is_object() || !body.contains("ok") || !body["ok"].is_boolean() || body["id"] != id)
    broken("parse_answer accepted an answer without D-FRAME's ok and id", line);
  const driver::Reply reply{body, 0, 0};
  if (!reply.ok()) {
    if (!body.contains("error") || !body["error"].is_string())
      broken("parse_answer accepted a failed answer with no string error (D-ERRORS)", line);
    must_serialize(reply.error().message(), line);
  }
  if (id == 0) check_hello(body, line);
  if (const auto view = body.find("view"); view != body.end()) {
    try {
      (void)driver::view_from_json(*view);
    } catch (const json::exception&) {
      // documented: the check turns it into a D-FRAME violation
    }
  }
  must_serialize(driver::shown(body), line);
}

void check_line(std::string_view line, std::int64_t id) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // as receive() does
  const auto answer = driver::parse_answer(line, json(id));
  if (const auto* fault = std::get_if<driver::AnswerFault>(&answer)) {
    if (fault->what.empty()) broken("a refused answer names nothing", line);
    must_serialize(fault->what, line);
  } else {
    check_accepted(std::get<json>(answer), id, line);
  }
  const std::string clipped = driver::printable_utf8(line, 300);
  if (clipped.size() > 303) broken("printable_utf8 let a clipped line grow past its cap", line);
  must_serialize(clipped, line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::int64_t id = 0;
  for (std::size_t start = 0; start < all.size(); ++id) {
    std::size_t nl = all.find('\n', start);
    if (nl == std::string_view::npos) nl = all.size();
    check_line(all.substr(start, nl - start), id);
    start = nl + 1;
  }
  return 0;
}
