// The last bytes a driver wrote to its stderr, kept in memory: the driver's
// fd 2 is a pipe that a thread of the suite drains at once, so the driver
// never blocks on it, nothing lands in a file another user can guess or
// plant a link at, and the suite holds at most `capacity` bytes however
// much the driver writes (SPEC 9b: a driver is untrusted input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace memlink::conformance::driver {

class StderrTail {
 public:
  explicit StderrTail(std::size_t capacity = 64 * 1024);  // makes the pipe; throws std::runtime_error
  ~StderrTail();                                          // stops the reader and closes both ends
  StderrTail(const StderrTail&) = delete;
  StderrTail& operator=(const StderrTail&) = delete;

  // The end the driver writes (close-on-exec: hand it to the child with
  // dup2), and the reader thread, started once the child holds its copy.
  int write_end() const { return write_fd_; }
  void start();

  // At most `max_bytes` of the last bytes written, as they came.
  std::string tail(std::size_t max_bytes) const;
  // Every byte written so far, kept or not.
  std::uint64_t total_bytes() const;
  // Waits until every writer has closed its end and all was read.
  void wait_for_end();

 private:
  void drain();

  std::size_t capacity_;
  int read_fd_ = -1, write_fd_ = -1;
  int wake_read_ = -1, wake_write_ = -1;  // the destructor's knock on the reader's poll
  mutable std::mutex mu_;
  std::string kept_;  // the last bytes, at most 2 * capacity_ before a trim
  std::uint64_t total_ = 0;
  std::thread reader_;
};

}  // namespace memlink::conformance::driver
