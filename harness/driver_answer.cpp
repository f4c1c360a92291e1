#include "driver_answer.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "driver_json.hpp"

namespace memlink::conformance::driver {
namespace {

using nlohmann::json;

// Deeper than this a value is described, not dumped: nlohmann's serializer
// recurses once a level, and a line of 8 MiB nests 4 million deep.
constexpr std::size_t kShownDepth = 32;

bool shallow(const json& j) {
  std::vector<std::pair<const json*, std::size_t>> todo{{&j, 0}};
  while (!todo.empty()) {
    const auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth >= kShownDepth) return false;
    for (const json& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return true;
}

AnswerFault frame(std::string what) { return {spec::DriverRule::D_FRAME, std::move(what)}; }
AnswerFault errors(std::string what) { return {spec::DriverRule::D_ERRORS, std::move(what)}; }

// D-FRAME, D-ERRORS: the fields every answer shares, each of its type.
std::optional<AnswerFault> frame_fault(const json& body, const json& request_id) {
  if (!body.is_object()) return frame("its answer is not a JSON object");
  const auto ok = body.find("ok");
  if (ok == body.end() || !ok->is_boolean()) return frame("its answer has no boolean \"ok\"");
  const auto id = body.find("id");
  if (id == body.end() || !id->is_number_integer() || *id != request_id)
    return frame("its answer carries id " + (id == body.end() ? std::string("(none)") : shown(*id)) +
                 (id != body.end() && !id->is_number_integer() ? " (not an integer)" : "") + ", the request had " +
                 shown(request_id));
  const auto error = body.find("error");
  if (!ok->get<bool>() && error == body.end()) return errors("a failed answer names no \"error\"");
  if (error != body.end() && !error->is_string())
    return errors("its \"error\" is " + shown(*error) + ", not the name of an error code");
  if (const auto detail = body.find("detail"); detail != body.end() && !detail->is_string())
    return errors("its \"detail\" is " + shown(*detail) + ", not a string");
  return std::nullopt;
}

}  // namespace

std::string shown(const json& j, std::size_t max_bytes) {
  if (!shallow(j))
    return std::string("(a JSON ") + j.type_name() + " nested deeper than " + std::to_string(kShownDepth) + " levels)";
  return printable_utf8(j.dump(-1, ' ', false, json::error_handler_t::replace), max_bytes);
}

std::variant<json, AnswerFault> parse_answer(std::string_view line, const json& request_id) {
  // No exceptions: a line that is not JSON (or nests past the parser's
  // depth, or is not UTF-8) parses to a discarded value.
  json body = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return frame("it printed a line that is not JSON");
  if (auto fault = frame_fault(body, request_id)) return *std::move(fault);
  return body;
}

}  // namespace memlink::conformance::driver
