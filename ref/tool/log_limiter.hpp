// Rate limiting of repeated log lines: a serve loop that meets the same error
// on every turn (a slot held by a live process, a corrupt peer) must not
// write gigabytes of the same line. The first occurrence is printed; repeats
// of the same line within `window` are counted and summarised once the
// window has passed or a different line comes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace memlink::shm::tool {

class LogLimiter {
 public:
  explicit LogLimiter(std::FILE* out, std::uint64_t window_ns = 10'000'000'000ULL) : out_(out), window_ns_(window_ns) {}
  ~LogLimiter() { flush_repeats(); }
  LogLimiter(const LogLimiter&) = delete;
  LogLimiter& operator=(const LogLimiter&) = delete;

  // Prints `line` (no newline needed) unless it repeats the last one within
  // the window. `now_ns` is any monotonic clock.
  void report(const std::string& line, std::uint64_t now_ns) {
    if (line == last_ && now_ns - printed_at_ns_ < window_ns_) {
      ++repeats_;
      return;
    }
    flush_repeats();
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
    last_ = line;
    printed_at_ns_ = now_ns;
  }

  // Prints the count of suppressed repeats, if any.
  void flush_repeats() {
    if (repeats_ == 0) return;
    std::fprintf(out_, "memlink-shm: (the line above repeated %llu more times)\n", static_cast<unsigned long long>(repeats_));
    std::fflush(out_);
    repeats_ = 0;
  }

  std::uint64_t suppressed() const noexcept { return repeats_; }

 private:
  std::FILE* out_;
  std::uint64_t window_ns_;
  std::string last_;
  std::uint64_t printed_at_ns_ = 0;
  std::uint64_t repeats_ = 0;
};

}  // namespace memlink::shm::tool
