// Fuzz target: the input bytes are a segment file. Connecting must either
// accept it, after which reading everything in it must be safe, or reject it
// with CorruptSegment / ProtocolMismatch / Disconnected naming what failed.
// Never a crash, an out-of-bounds access or a hang.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "memlink/shm/transport.hpp"

using namespace memlink;

namespace {

const std::string& scratch_path() {
  static const std::string path = [] {
    std::string p = "/dev/shm/memlink-fuzz-open-" + std::to_string(::getpid());
    std::atexit([] { (void)shm::MmapSegment::remove("/dev/shm/memlink-fuzz-open-" + std::to_string(::getpid())); });
    return p;
  }();
  return path;
}

void drain(shm::PriorityRingBuffer& rings, std::vector<std::byte>& out) {
  for (int i = 0; i < 4 * 4096; ++i) {  // bounded: every ring holds fewer messages than this
    auto r = rings.read(out);
    if (!r && (r.code() == shm::ErrorCode::Empty || r.code() == shm::ErrorCode::InvalidState)) return;
    (void)rings.peek();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = ::open(scratch_path().c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  const bool written = ::write(fd, data, size) == static_cast<ssize_t>(size);
  ::close(fd);
  if (!written) return 0;
  auto client = shm::Client::connect(scratch_path(), 1);
  if (!client) {
    const auto code = client.code();
    const bool expected = code == shm::ErrorCode::CorruptSegment || code == shm::ErrorCode::ProtocolMismatch ||
                          code == shm::ErrorCode::Disconnected;
    if (!expected || client.error().detail.empty()) {
      std::fprintf(stderr, "segment_open: unexpected rejection: %s\n", client.error().message().c_str());
      std::abort();
    }
    return 0;
  }
  // Accepted: everything in it must be readable without harm.
  std::vector<std::byte> out(client->geometry().slot_size);
  drain(client->inbound(), out);   // d2c, as the client reads it
  drain(client->outbound(), out);  // c2d, as a daemon would
  return 0;
}
