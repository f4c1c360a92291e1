// The reference transport (ref/) behind the Adapter interface: what
// --adapter reference checks, and a base to start an adapter of one's own
// from (examples/consumer/check_my_transport.cpp).
#pragma once

#include <optional>

#include "memlink/conformance/adapter.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::conformance {

class ReferenceAdapter : public Adapter {
 public:
  ReferenceAdapter();
  ~ReferenceAdapter() override;
  std::string name() const override { return "reference"; }

  shm::Status create(const model::Config& config) override;
  shm::Status connect(std::uint16_t version) override;
  void disconnect() override;
  shm::Status reopen() override;
  shm::Status shutdown() override;
  shm::Result<std::uint64_t> write(Direction d, Priority p, std::span<const std::byte> data) override;
  shm::Result<std::uint64_t> write_blocking(Direction d, Priority p, std::span<const std::byte> data,
                                            std::chrono::nanoseconds timeout) override;
  shm::Result<model::Message> read(Direction d) override;
  shm::Result<PeekInfo> peek(Direction d) override;
  shm::Status set_backpressure(std::uint32_t permille) override;
  shm::Result<std::uint64_t> stop_writer(Direction d, Priority p, model::WriterStop where,
                                         std::span<const std::byte> data) override;
  shm::Result<model::Message> stop_reader(Direction d, model::ReaderStop where) override;
  shm::Status corrupt_oldest(Direction d, Priority p, model::Corruption c) override;
  shm::Status recover(Direction d) override;
  void kill_stopped(Direction d);
  model::View observe() override;
  std::span<const std::byte> segment_bytes() override;
  std::uint32_t owner_pid(Direction d, bool writer) const override;
  shm::Status connect_to_copy(std::span<const std::byte> bytes, std::uint16_t version) override;

 protected:
  // The endpoint that writes / reads direction d (nullptr: no client).
  shm::Endpoint* writer(Direction d);
  shm::Endpoint* reader(Direction d);
  // The ring of direction d, priority p, as the daemon maps it.
  shm::RingBuffer& ring(Direction d, Priority p);
  void count_delivery(Direction d);
  // The zero-copy paths (SPEC T-LOAN) write() and read() take in turn.
  shm::Result<std::uint64_t> write_by_loan(shm::Endpoint& ep, Priority p, std::span<const std::byte> data);
  shm::Result<model::Message> read_by_view(shm::Endpoint& ep);
  std::uint64_t writes_ = 0, reads_ = 0;

  std::string path_;
  std::uint32_t slot_size_ = 0;
  std::optional<shm::Daemon> daemon_;
  std::vector<std::unique_ptr<shm::Client>> clients_;
};

}  // namespace memlink::conformance
