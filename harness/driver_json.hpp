// The JSON shapes of the driver protocol (DRIVER.md) that both sides share:
// payloads as hex (D-BYTES), error codes by name (D-ERRORS), the observable
// state (D-CONTROL), and the names of the model's crash simulations
// (D-STOPS). The suite and the reference driver both use these, so the two
// cannot drift apart.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "memlink/model/model.hpp"
#include "memlink/shm/priority.hpp"
#include "memlink/shm/result.hpp"

namespace memlink::conformance::driver {

// D-VERSION: the protocol this suite speaks, and the oldest it still runs.
inline constexpr int kProtocolVersion = 2;
inline constexpr int kOldestProtocolVersion = 1;

std::string to_hex(std::span<const std::byte> bytes);
// nullopt if `hex` is not an even-length string of hex digits.
std::optional<std::vector<std::byte>> from_hex(const std::string& hex);

std::optional<shm::ErrorCode> error_code_from_name(const std::string& name);

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no
// overlong form, no surrogate, nothing past U+10FFFF), 0 if there is none;
// its character in *code_point.
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t* code_point = nullptr);

// What a driver printed, made fit for a report (SPEC 9b: a driver is
// untrusted input): each byte that does not begin a well-formed UTF-8
// sequence becomes U+FFFD, and the text is cut to at most `max_bytes` on a
// character boundary, "..." marking the cut. JSON and JUnit writers throw
// on anything else.
std::string printable_utf8(std::string_view text, std::size_t max_bytes = std::string_view::npos);

// Numbers a driver sent (SPEC 9b): the integer `j` holds when T can hold
// it, otherwise nlohmann::json::type_error, which the checks report as
// D-FRAME. Never get<T>()'s conversion, which wraps a negative number,
// truncates a large one, and is undefined for a float out of T's range.
[[noreturn]] void throw_not_an_integer(const nlohmann::json& j, const std::string& range);
template <class T>
T integer(const nlohmann::json& j) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if (j.is_number_unsigned()) {
    if (const auto v = j.get<std::uint64_t>(); std::in_range<T>(v)) return static_cast<T>(v);
  } else if (j.is_number_integer()) {
    if (const auto v = j.get<std::int64_t>(); std::in_range<T>(v)) return static_cast<T>(v);
  }
  throw_not_an_integer(
      j, std::to_string(std::numeric_limits<T>::min()) + ".." + std::to_string(std::numeric_limits<T>::max()));
}
// Field `key` of `j` (nlohmann::json::out_of_range if absent).
template <class T>
T integer(const nlohmann::json& j, const char* key) {
  return integer<T>(j.at(key));
}
// Field `key` of `j`, or `fallback` where `j` has none.
template <class T>
T integer_or(const nlohmann::json& j, const char* key, T fallback) {
  const auto it = j.is_object() ? j.find(key) : j.end();
  return it == j.end() ? fallback : integer<T>(*it);
}
// Field `key` of `j` as a priority: 0, 1 or 2 (type_error otherwise).
shm::Priority priority(const nlohmann::json& j, const char* key = "priority");

nlohmann::json view_to_json(const model::View& v);
// Throws nlohmann::json::exception if a field is missing or of the wrong type.
model::View view_from_json(const nlohmann::json& j);

const char* corruption_name(model::Corruption c);  // "payload", "length_past_slot", ...
std::optional<model::Corruption> corruption_from_name(const std::string& name);
const char* direction_name(model::Direction d);  // "c2d", "d2c"
std::optional<model::Direction> direction_from_name(const std::string& name);

}  // namespace memlink::conformance::driver
