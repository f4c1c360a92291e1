// Reading a fuzzer's bytes as a stream of small decisions. Running out of
// input yields zeros, so every input decodes to something.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace memlink::fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }

  template <class T>
  T take() {
    T v{};
    const std::size_t n = std::min(sizeof(T), size_ - std::min(pos_, size_));
    if (n > 0) std::memcpy(&v, data_ + pos_, n);
    pos_ += sizeof(T);
    return v;
  }

  // Up to n bytes (fewer at the end of the input).
  std::span<const std::uint8_t> bytes(std::size_t n) {
    const std::size_t start = std::min(pos_, size_);
    const std::size_t len = std::min(n, size_ - start);
    pos_ = start + len;
    return {data_ + start, len};
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace memlink::fuzz
