#include "driver_json.hpp"

#include <algorithm>

namespace memlink::conformance::driver {

std::string to_hex(std::span<const std::byte> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    out += digits[v >> 4];
    out += digits[v & 15];
  }
  return out;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::vector<std::byte>> from_hex(const std::string& hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::vector<std::byte> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::byte>(hi * 16 + lo);
  }
  return out;
}

std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t* code_point) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  std::uint32_t cp = 0, min = 0;
  if (b0 < 0x80) {
    len = 1, cp = b0;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1Fu, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0Fu, min = 0x800;  // min rules out overlong forms
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return 0;  // a continuation byte, an overlong lead (C0, C1) or beyond U+10FFFF
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  if (code_point != nullptr) *code_point = cp;
  return len;
}

std::string printable_utf8(std::string_view text, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(text.size(), max_bytes == std::string_view::npos ? text.size() : max_bytes + 3));
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    const std::string_view piece = n > 0 ? text.substr(i, n) : kReplacement;
    if (max_bytes != std::string_view::npos && out.size() + piece.size() > max_bytes) return out + "...";
    out += piece;
    i += n > 0 ? n : 1;
  }
  return out;
}

std::optional<shm::ErrorCode> error_code_from_name(const std::string& name) {
  for (int c = 0; c <= static_cast<int>(shm::ErrorCode::IoError); ++c)
    if (shm::to_string(static_cast<shm::ErrorCode>(c)) == name) return static_cast<shm::ErrorCode>(c);
  return std::nullopt;
}

nlohmann::json view_to_json(const model::View& v) {
  nlohmann::json rings = nlohmann::json::array();
  for (const auto& dir : v.rings) {
    nlohmann::json d = nlohmann::json::array();
    for (const auto& r : dir) {
      std::vector<int> slots;
      for (auto s : r.slots) slots.push_back(static_cast<int>(s));
      d.push_back({{"capacity", r.capacity},
                   {"head", r.head},
                   {"tail", r.tail},
                   {"corrupt_skipped", r.corrupt_skipped},
                   {"reclaimed", r.reclaimed},
                   {"slots", slots}});
    }
    rings.push_back(d);
  }
  return {{"rings", rings},
          {"backpressure", v.backpressure},
          {"client_count", v.client_count},
          {"client_head", v.client_head},
          {"daemon_tail", v.daemon_tail},
          {"shutdown", v.shutdown}};
}

void throw_not_an_integer(const nlohmann::json& j, const std::string& range) {
  const std::string text = j.is_primitive()
                               ? printable_utf8(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 80)
                               : std::string("a JSON ") + j.type_name();
  throw nlohmann::json::type_error::create(302, "expected an integer in " + range + ", got " + text, &j);
}

shm::Priority priority(const nlohmann::json& j, const char* key) {
  const auto p = integer<int>(j, key);
  if (p < 0 || p >= static_cast<int>(shm::kPriorityCount)) throw_not_an_integer(j.at(key), "0..2 (a priority)");
  return static_cast<shm::Priority>(p);
}

model::View view_from_json(const nlohmann::json& j) {
  model::View v;
  const auto& rings = j.at("rings");
  for (std::size_t d = 0; d < shm::kDirectionCount; ++d)
    for (std::size_t p = 0; p < shm::kPriorityCount; ++p) {
      const auto& r = rings.at(d).at(p);
      model::RingView& rv = v.rings[d][p];
      rv.capacity = integer<std::uint32_t>(r, "capacity");
      rv.head = integer<std::uint64_t>(r, "head");
      rv.tail = integer<std::uint64_t>(r, "tail");
      rv.corrupt_skipped = integer<std::uint64_t>(r, "corrupt_skipped");
      rv.reclaimed = integer<std::uint64_t>(r, "reclaimed");
      // A state byte, garbage included: a peer's corruption of a slot's
      // word is part of the view (the model keeps the raw byte too).
      for (const auto& s : r.at("slots")) rv.slots.push_back(static_cast<model::SlotState>(integer<std::uint8_t>(s)));
    }
  v.backpressure = integer<std::uint32_t>(j, "backpressure");
  v.client_count = integer<std::uint32_t>(j, "client_count");
  // `next_sequence`, which drivers written before T-SEQ numbered by position
  // still send, is ignored.
  v.client_head = integer<std::uint64_t>(j, "client_head");
  v.daemon_tail = integer<std::uint64_t>(j, "daemon_tail");
  v.shutdown = j.at("shutdown").get<bool>();
  return v;
}

namespace {
// In model::Corruption's order.
constexpr const char* kCorruptionNames[model::kCorruptionCount] = {
    "payload",          "checksum_low_bit",  "checksum_high_bit",
    "length_past_slot", "length_in_padding", "length_shorter",
    "priority",         "position",          "state",
    "sequence"};
}  // namespace

const char* corruption_name(model::Corruption c) { return kCorruptionNames[static_cast<int>(c)]; }

std::optional<model::Corruption> corruption_from_name(const std::string& name) {
  for (int c = 0; c < model::kCorruptionCount; ++c)
    if (name == kCorruptionNames[c]) return static_cast<model::Corruption>(c);
  return std::nullopt;
}

const char* direction_name(model::Direction d) { return d == model::Direction::ClientToDaemon ? "c2d" : "d2c"; }

std::optional<model::Direction> direction_from_name(const std::string& name) {
  if (name == "c2d") return model::Direction::ClientToDaemon;
  if (name == "d2c") return model::Direction::DaemonToClient;
  return std::nullopt;
}

}  // namespace memlink::conformance::driver
