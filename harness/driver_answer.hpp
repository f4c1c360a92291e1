// One answer line a driver printed, read as the untrusted input it is
// (SPEC 9b, DRIVER.md D-FRAME, D-ERRORS): parsed, and the fields every
// answer shares type-checked, so that no bytes a driver prints make the
// suite throw. DriverProcess::receive reads every answer through it; the
// fuzz target fuzz/driver_answer.cpp feeds it arbitrary bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "memlink/spec/clause_ids.hpp"

namespace memlink::conformance::driver {

// Why a line is not an answer: the DRIVER.md rule it breaks, in words.
struct AnswerFault {
  spec::DriverRule rule;
  std::string what;
};

// The answer `line` (its newline removed) to the request whose id is
// `request_id`: a JSON object with a boolean "ok", that id (an integer),
// and, where present, a string "error" (required when ok is false) and a
// string "detail". Otherwise the rule it breaks. Throws nothing but
// std::bad_alloc.
std::variant<nlohmann::json, AnswerFault> parse_answer(std::string_view line, const nlohmann::json& request_id);

// JSON a driver sent, for a message: one line, valid UTF-8, at most
// `max_bytes` (cut on a character boundary, "..." marking the cut).
std::string shown(const nlohmann::json& j, std::size_t max_bytes = 300);

}  // namespace memlink::conformance::driver
