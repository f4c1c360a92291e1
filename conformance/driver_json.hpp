// The JSON shapes of the driver protocol (DRIVER.md) that both sides share:
// payloads as hex (D-BYTES), error codes by name (D-ERRORS), the observable
// state (D-CONTROL), and the names of the model's crash simulations
// (D-STOPS). The suite and the reference driver both use these, so the two
// cannot drift apart.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memlink/model/model.hpp"
#include "memlink/shm/result.hpp"

namespace memlink::conformance::driver {

// D-VERSION: the protocol this suite speaks, and the oldest it still runs.
inline constexpr int kProtocolVersion = 2;
inline constexpr int kOldestProtocolVersion = 1;

std::string to_hex(std::span<const std::byte> bytes);
// nullopt if `hex` is not an even-length string of hex digits.
std::optional<std::vector<std::byte>> from_hex(const std::string& hex);

std::optional<shm::ErrorCode> error_code_from_name(const std::string& name);

nlohmann::json view_to_json(const model::View& v);
// Throws nlohmann::json::exception if a field is missing or of the wrong type.
model::View view_from_json(const nlohmann::json& j);

const char* corruption_name(model::Corruption c);  // "payload", "length_past_slot", ...
std::optional<model::Corruption> corruption_from_name(const std::string& name);
const char* direction_name(model::Direction d);  // "c2d", "d2c"
std::optional<model::Direction> direction_from_name(const std::string& name);

}  // namespace memlink::conformance::driver
