#include "stderr_tail.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace memlink::conformance::driver {

StderrTail::StderrTail(std::size_t capacity) : capacity_(capacity) {
  int data[2], wake[2];
  if (::pipe2(data, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot make a pipe for a driver's stderr: ") + std::strerror(errno));
  if (::pipe2(wake, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(data[0]);
    ::close(data[1]);
    throw std::runtime_error(std::string("cannot make a pipe for a driver's stderr: ") + std::strerror(e));
  }
  read_fd_ = data[0];
  write_fd_ = data[1];
  wake_read_ = wake[0];
  wake_write_ = wake[1];
}

void StderrTail::start() {
  // The child holds its copy now: without closing ours, the reader would
  // never see the end of file when the driver exits.
  ::close(write_fd_);
  write_fd_ = -1;
  reader_ = std::thread([this] { drain(); });
}

StderrTail::~StderrTail() {
  if (reader_.joinable()) {
    const char knock = 1;
    (void)!::write(wake_write_, &knock, 1);
    reader_.join();
  }
  for (int fd : {read_fd_, write_fd_, wake_read_, wake_write_})
    if (fd >= 0) ::close(fd);
}

// Reads until the driver (and every process it passed its stderr to) closes
// the pipe, or until the destructor knocks: a grandchild that keeps the
// pipe open must not keep the suite waiting.
void StderrTail::drain() {
  char chunk[65536];
  for (;;) {
    pollfd fds[2] = {{read_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    const int r = ::poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (fds[1].revents & POLLIN) != 0) return;
    const ssize_t n = ::read(read_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // end of file
    std::lock_guard<std::mutex> lock(mu_);
    kept_.append(chunk, static_cast<std::size_t>(n));
    total_ += static_cast<std::uint64_t>(n);
    if (kept_.size() > 2 * capacity_) kept_.erase(0, kept_.size() - capacity_);  // amortized: linear in what came
  }
}

void StderrTail::wait_for_end() {
  if (reader_.joinable()) reader_.join();
}

std::string StderrTail::tail(std::size_t max_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t n = std::min({max_bytes, capacity_, kept_.size()});
  return kept_.substr(kept_.size() - n);
}

std::uint64_t StderrTail::total_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

}  // namespace memlink::conformance::driver
