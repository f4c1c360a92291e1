// Error codes and the Result<T> type every fallible call returns.
//
// clang 14 with Debian 12's libstdc++ has no std::expected (and clang is
// needed for libFuzzer), so this is a small expected-like type of our own.
// Nothing in the library throws or aborts on bad input: errors are values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace memlink::shm {

enum class ErrorCode : std::uint8_t {
  Full,              // ring (or every slot of the priority) is occupied
  Empty,             // nothing to read
  InvalidState,      // a slot or endpoint is in a state that forbids the call
  MessageTooLarge,   // payload larger than the slot (the crate's DataTooLarge)
  Disconnected,      // peer is gone or shut down
  Timeout,           // a wait ran out of time
  Interrupted,       // a wait was interrupted by a signal
  ProtocolMismatch,  // user protocol version differs between daemon and client
  CorruptSegment,    // a value read from shared memory failed validation
  PermissionDenied,  // the OS refused access to the segment
  InvalidArgument,   // a caller-supplied argument is out of range
  Unsupported,       // the platform lacks the mechanism
  AlreadyExists,     // create() found a segment already at the path
  NotFound,          // open() found no segment at the path
  IoError,           // any other OS error (errno text in the detail)
};

constexpr std::string_view to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::Full: return "Full";
    case ErrorCode::Empty: return "Empty";
    case ErrorCode::InvalidState: return "InvalidState";
    case ErrorCode::MessageTooLarge: return "MessageTooLarge";
    case ErrorCode::Disconnected: return "Disconnected";
    case ErrorCode::Timeout: return "Timeout";
    case ErrorCode::Interrupted: return "Interrupted";
    case ErrorCode::ProtocolMismatch: return "ProtocolMismatch";
    case ErrorCode::CorruptSegment: return "CorruptSegment";
    case ErrorCode::PermissionDenied: return "PermissionDenied";
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::Unsupported: return "Unsupported";
    case ErrorCode::AlreadyExists: return "AlreadyExists";
    case ErrorCode::NotFound: return "NotFound";
    case ErrorCode::IoError: return "IoError";
  }
  return "Unknown";
}

// An error: a code for programs, a text for people. For CorruptSegment the
// detail starts with the name of the field that failed validation
// ("control.magic: ...", "ring[c2d/high].slot[3].length: ...").
//
// The outcomes a polling loop expects (Full, Empty) carry a static text in
// `fixed` and an empty `detail`: returning them allocates nothing (an empty
// std::string owns no memory), so a reader that polls a million times a
// second does not call malloc a million times (Error.ExpectedOutcomesAllocateNothing).
// Everything else builds its detail when it happens, which is rare.
struct Error {
  ErrorCode code;
  std::string detail;
  const char* fixed = nullptr;  // a string literal, when detail is empty

  // What happened, for people: the detail, else the fixed text ("" if none).
  std::string text() const { return detail.empty() && fixed != nullptr ? std::string(fixed) : detail; }

  // "CorruptSegment: control.magic: expected 0x..., found 0x..."
  std::string message() const {
    std::string m(to_string(code));
    if (const std::string t = text(); !t.empty()) {
      m += ": ";
      m += t;
    }
    return m;
  }
};

inline Error make_error(ErrorCode code, std::string detail = {}) {
  return Error{code, std::move(detail)};
}

// An expected outcome with a text that never changes (`fixed` must be a
// string literal or otherwise outlive every copy of the error): no allocation.
inline Error fixed_error(ErrorCode code, const char* fixed) noexcept { return Error{code, std::string(), fixed}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Precondition: ok(). Calling on an error is a programming bug.
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !ok().
  const Error& error() const& { return std::get<1>(v_); }
  ErrorCode code() const { return error().code; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return err_; }
  ErrorCode code() const { return err_.code; }

 private:
  Error err_{ErrorCode::InvalidState, {}};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace memlink::shm
