#include "workload_log.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "memlink/shm/mix.hpp"

namespace memlink::chaos {
namespace {

std::uint32_t fnv1a(std::span<const std::byte> b) {
  std::uint32_t h = 2166136261u;
  for (std::byte c : b) h = (h ^ static_cast<std::uint32_t>(c)) * 16777619u;
  return h;
}

}  // namespace

const char* stream_name(Stream s) { return s == Stream::C2D ? "c2d" : "d2c"; }

std::string to_string(const MessageId& id) {
  return std::string(stream_name(id.stream)) + (id.stream == Stream::C2D ? " client " : " daemon epoch ") +
         std::to_string(id.writer) + " priority " + std::to_string(id.priority) + " #" + std::to_string(id.n);
}

std::string to_string(Role r) { return r == Role::Daemon ? "daemon" : r == Role::Writer ? "writer" : "reader"; }

// Layout: stream u8, priority u8, writer u32, n u64, filler, fnv1a u32 of all before it.
std::vector<std::byte> encode_payload(const MessageId& id, std::size_t length) {
  length = std::max(length, kMinPayload);
  std::vector<std::byte> out(length);
  out[0] = static_cast<std::byte>(id.stream);
  out[1] = static_cast<std::byte>(id.priority);
  std::memcpy(out.data() + 2, &id.writer, 4);
  std::memcpy(out.data() + 6, &id.n, 8);
  std::uint64_t x = shm::mix64(id.n * 31 + id.writer + (std::uint64_t(id.priority) << 40));
  for (std::size_t i = 14; i + 4 < length; ++i) {
    x = shm::mix64(x + i);
    out[i] = static_cast<std::byte>(x);
  }
  const std::uint32_t h = fnv1a({out.data(), length - 4});
  std::memcpy(out.data() + length - 4, &h, 4);
  return out;
}

bool decode_payload(std::span<const std::byte> payload, MessageId& id) {
  if (payload.size() < kMinPayload) return false;
  std::uint32_t h = 0;
  std::memcpy(&h, payload.data() + payload.size() - 4, 4);
  if (h != fnv1a(payload.first(payload.size() - 4))) return false;
  const auto stream = static_cast<std::uint8_t>(payload[0]);
  if (stream > 1) return false;
  id.stream = static_cast<Stream>(stream);
  id.priority = static_cast<std::uint8_t>(payload[1]);
  std::memcpy(&id.writer, payload.data() + 2, 4);
  std::memcpy(&id.n, payload.data() + 6, 8);
  // The filler must be what the id says (a payload from another id with a
  // matching checksum is still caught).
  return encode_payload(id, payload.size()) == std::vector<std::byte>(payload.begin(), payload.end());
}

std::vector<Record> read_log(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<Record> out;
  Record r;
  while (in.read(reinterpret_cast<char*>(&r), sizeof r)) out.push_back(r);
  return out;
}

}  // namespace memlink::chaos
