// The conformance suite talks to an implementation of SPEC.md through this
// interface, so that any transport can be checked: write an Adapter for it
// and pass --adapter. The reference transport is the default adapter.
//
// Directions: writing c2d is a client's write, writing d2c the daemon's;
// reading c2d is the daemon's read, reading d2c a client's. Client-side
// operations use the oldest connected client.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memlink/model/model.hpp"
#include "memlink/shm/result.hpp"

namespace memlink::conformance {

using model::Direction;
using model::Priority;

struct PeekInfo {
  Priority priority = Priority::Low;
  std::uint64_t sequence = 0;
  std::uint32_t length = 0;
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string name() const = 0;
  // Whether the implementation claims a capability of DRIVER.md D-CAPS
  // ("stops", "observe", ...). In-process adapters claim them all.
  virtual bool claims(const std::string& capability) const {
    (void)capability;
    return true;
  }

  // Creates a fresh segment for `config` and its daemon (no client yet).
  virtual shm::Status create(const model::Config& config) = 0;
  // After create: the ring capacities per priority the implementation
  // reported (a driver's create answer, DRIVER.md D-CREATE), if it did.
  virtual std::optional<std::array<std::uint32_t, 3>> reported_capacity() const { return std::nullopt; }
  // After create: the largest payload the implementation reported it takes
  // (its slot size, D-CREATE), if it did.
  virtual std::optional<std::uint32_t> reported_slot_size() const { return std::nullopt; }
  virtual shm::Status connect(std::uint16_t version) = 0;
  virtual void disconnect() = 0;  // the most recently connected client
  // Unmaps and maps the segment again (the oldest client reconnects).
  virtual shm::Status reopen() = 0;
  virtual shm::Status shutdown() = 0;  // the daemon's

  virtual shm::Result<std::uint64_t> write(Direction d, Priority p, std::span<const std::byte> data) = 0;
  virtual shm::Result<std::uint64_t> write_blocking(Direction d, Priority p, std::span<const std::byte> data,
                                                    std::chrono::nanoseconds timeout) = 0;
  virtual shm::Result<model::Message> read(Direction d) = 0;
  virtual shm::Result<PeekInfo> peek(Direction d) = 0;
  virtual shm::Status set_backpressure(std::uint32_t permille) = 0;

  // Crash simulation: the writer stops after a step (leaving Writing); the
  // consumer stops after take (Reading) or complete (Done).
  virtual shm::Result<std::uint64_t> stop_writer(Direction d, Priority p, model::WriterStop where,
                                                 std::span<const std::byte> data) = 0;
  virtual shm::Result<model::Message> stop_reader(Direction d, model::ReaderStop where) = 0;
  // The writers and readers stopped above have died (SPEC K-STALE): their
  // slots in direction d now belong to a process that does not exist, and
  // the consumer of d runs its tail recovery.
  virtual shm::Status recover(Direction d) = 0;
  // A hostile peer changes one field (or a payload byte) of the oldest,
  // Ready, message of a ring, as model::Corruption says.
  virtual shm::Status corrupt_oldest(Direction d, Priority p, model::Corruption c) = 0;

  // Everything SPEC.md makes observable, read from the segment.
  virtual model::View observe() = 0;

  // The segment's bytes as this implementation laid them out.
  virtual std::span<const std::byte> segment_bytes() = 0;
  // The pid the writer (or, !writer, the reader) of direction d records as
  // the owner of the slots it holds (SPEC S-OWNER).
  virtual std::uint32_t owner_pid(Direction d, bool writer) const = 0;
  // Writes `bytes` as a segment file of its own and connects a client to it;
  // the result of that connect (the client is dropped again).
  virtual shm::Status connect_to_copy(std::span<const std::byte> bytes, std::uint16_t version) = 0;
};

// "reference" and the adapters registered below (nullptr for an unknown
// name). The suite's proofs that it catches a broken transport link the
// reference with a bug of the mutant catalog instead (ctest
// suite-*-catches-*, cmake/mutant_library.cmake).
std::unique_ptr<Adapter> make_adapter(const std::string& name);
std::vector<std::string> adapter_names();

// Makes `name` known to make_adapter and adapter_names, so that
// Params::adapter = name checks it: how a C++ user checks a transport of
// their own in process, linking memlink::conformance from the installed
// package instead of forking this repository (docs/conformance.md, "The suite
// as a library"). A name already taken (the reference's, or one registered
// before) is refused: false.
using AdapterFactory = std::function<std::unique_ptr<Adapter>()>;
bool register_adapter(const std::string& name, AdapterFactory factory);

}  // namespace memlink::conformance
