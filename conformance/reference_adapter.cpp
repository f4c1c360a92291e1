#include "memlink/conformance/reference_adapter.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>

#include "drivers/reference/reference_ops.hpp"
#include "memlink/conformance/suite.hpp"
#include "memlink/shm/platform.hpp"
#include "segment_fields.hpp"

namespace memlink::conformance {
namespace {

using shm::ErrorCode;
using shm::make_error;

shm::Error no_client() { return make_error(ErrorCode::Disconnected, "no client connected"); }

model::Message to_message(const shm::MessageInfo& info, std::span<const std::byte> buf) {
  return model::Message{info.priority, info.sequence, {buf.begin(), buf.begin() + info.length}};
}

}  // namespace

ReferenceAdapter::ReferenceAdapter() {
  static std::atomic<int> counter{0};
  path_ = "/dev/shm/memlink-conformance-" + std::to_string(::getpid()) + "-" +
          std::to_string(counter.fetch_add(1));
}

ReferenceAdapter::~ReferenceAdapter() {
  clients_.clear();
  daemon_.reset();
  reference_ops::remove_segment_files(path_);
}

shm::Status ReferenceAdapter::create(const model::Config& config) {
  (void)shm::MmapSegment::remove(path_);
  shm::DaemonOptions o;
  o.slot_size = config.slot_size;
  o.remove_on_shutdown = false;  // the segment outlives shutdown so connect can see SHUTDOWN
  o.endpoint.wait_strategy = shm::WaitStrategy::Block;
  // No heartbeat thread: the checks copy the segment's bytes while the
  // adapter is idle, and a thread stamping meanwhile would be a data race
  // (TSan). Nothing here depends on the heartbeat's age.
  o.heartbeat_interval = std::chrono::nanoseconds(0);
  o.heartbeat_timeout = std::chrono::hours(1);
  // The model's recover() means "the holders died long ago": a consumer
  // times a held slot on its own clock (SPEC K-STALE), so no wait here.
  o.endpoint.recovery.stale_after = std::chrono::nanoseconds(0);
  o.age = config.age;
  auto d = shm::Daemon::create(path_, config.segment_size, config.protocol_version, o);
  if (!d) return d.error();
  daemon_.emplace(std::move(d.value()));
  slot_size_ = config.slot_size;
  return {};
}

shm::Status ReferenceAdapter::connect(std::uint16_t version) {
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Block;
  o.daemon_timeout = std::chrono::hours(1);  // the daemon has no heartbeat thread here
  o.recovery.stale_after = std::chrono::nanoseconds(0);  // as in create()
  auto c = shm::Client::connect(path_, version, o);
  if (!c) return c.error();
  clients_.push_back(std::make_unique<shm::Client>(std::move(c.value())));
  return {};
}

void ReferenceAdapter::disconnect() {
  if (!clients_.empty()) clients_.pop_back();
}

shm::Status ReferenceAdapter::reopen() {
  if (clients_.empty()) return no_client();
  const std::uint16_t version = clients_.front()->protocol_version();
  clients_.erase(clients_.begin());  // unmaps
  shm::EndpointOptions o;
  o.wait_strategy = shm::WaitStrategy::Block;
  o.daemon_timeout = std::chrono::hours(1);  // the daemon has no heartbeat thread here
  o.recovery.stale_after = std::chrono::nanoseconds(0);  // as in create()
  auto c = shm::Client::connect(path_, version, o);  // maps again
  if (!c) return c.error();
  clients_.insert(clients_.begin(), std::make_unique<shm::Client>(std::move(c.value())));
  return {};
}

shm::Status ReferenceAdapter::shutdown() {
  daemon_->shutdown();
  return {};
}

shm::Endpoint* ReferenceAdapter::writer(Direction d) {
  if (d == Direction::DaemonToClient) return &*daemon_;
  return clients_.empty() ? nullptr : clients_.front().get();
}

shm::Endpoint* ReferenceAdapter::reader(Direction d) {
  if (d == Direction::ClientToDaemon) return &*daemon_;
  return clients_.empty() ? nullptr : clients_.front().get();
}

shm::RingBuffer& ReferenceAdapter::ring(Direction d, Priority p) {
  return d == Direction::ClientToDaemon ? daemon_->inbound().ring(p) : daemon_->outbound().ring(p);
}

void ReferenceAdapter::count_delivery(Direction d) {
  if (d == Direction::ClientToDaemon) daemon_->control().daemon_tail.fetch_add(1);
}

// SPEC T-LOAN: every other write goes through a loan and every other read
// through a view, so each check that drives this adapter judges both paths,
// and their mixes (a loaned message read by copy, a copied one viewed),
// against the same model. Alternation by count keeps a replay exact.
// (T-LOAN is recorded by run_check: reference_ops counts the loans and
// views taken in this process.)
shm::Result<std::uint64_t> ReferenceAdapter::write_by_loan(shm::Endpoint& ep, Priority p,
                                                          std::span<const std::byte> data) {
  return reference_ops::write_by_loan(ep, p, data, slot_size_);
}

shm::Result<model::Message> ReferenceAdapter::read_by_view(shm::Endpoint& ep) {
  return reference_ops::read_by_view(ep);
}

shm::Result<std::uint64_t> ReferenceAdapter::write(Direction d, Priority p, std::span<const std::byte> data) {
  shm::Endpoint* ep = writer(d);
  if (ep == nullptr) return no_client();
  if ((writes_++ & 1) != 0) return write_by_loan(*ep, p, data);
  auto r = ep->write(p, data);
  if (!r) return r.error();
  return static_cast<std::uint64_t>(ring(d, p).slot_header(r->index).sequence);
}

shm::Result<std::uint64_t> ReferenceAdapter::write_blocking(Direction d, Priority p,
                                                            std::span<const std::byte> data,
                                                            std::chrono::nanoseconds timeout) {
  shm::Endpoint* ep = writer(d);
  if (ep == nullptr) return no_client();
  auto r = ep->write_blocking(p, data, timeout);
  if (!r) return r.error();
  return static_cast<std::uint64_t>(ring(d, p).slot_header(r->index).sequence);
}

shm::Result<model::Message> ReferenceAdapter::read(Direction d) {
  shm::Endpoint* ep = reader(d);
  if (ep == nullptr) return no_client();
  if ((reads_++ & 1) != 0) return read_by_view(*ep);
  std::vector<std::byte> buf(slot_size_);
  auto r = ep->read(buf);
  if (!r) return r.error();
  return to_message(*r, buf);
}

shm::Result<PeekInfo> ReferenceAdapter::peek(Direction d) {
  shm::Endpoint* ep = reader(d);
  if (ep == nullptr) return no_client();
  auto r = ep->peek();
  if (!r) return r.error();
  return PeekInfo{r->priority, r->sequence, r->length};
}

shm::Status ReferenceAdapter::set_backpressure(std::uint32_t permille) {
  return daemon_->set_backpressure(permille);
}

shm::Result<std::uint64_t> ReferenceAdapter::stop_writer(Direction d, Priority p, model::WriterStop where,
                                                         std::span<const std::byte> data) {
  shm::Endpoint* ep = writer(d);
  if (ep == nullptr) return no_client();
  return reference_ops::stop_writer(*ep, p, where, data);
}

shm::Result<model::Message> ReferenceAdapter::stop_reader(Direction d, model::ReaderStop where) {
  shm::Endpoint* ep = reader(d);
  if (ep == nullptr) return no_client();
  return reference_ops::stop_reader(*ep, where, slot_size_);
}

// The stopped writers and readers die: their slots now name a dead owner
// that took them long ago. Then the consumer recovers (SPEC K-STALE).
void ReferenceAdapter::kill_stopped(Direction d) {
  reference_ops::kill_stopped(d == Direction::ClientToDaemon ? daemon_->inbound() : daemon_->outbound());
}

shm::Status ReferenceAdapter::recover(Direction d) {
  shm::Endpoint* ep = reader(d);
  if (ep == nullptr) return no_client();
  kill_stopped(d);
  (void)ep->recover_inbound();
  return {};
}

shm::Status ReferenceAdapter::corrupt_oldest(Direction d, Priority p, model::Corruption c) {
  reference_ops::corrupt_oldest(ring(d, p), c);
  return {};
}

model::View ReferenceAdapter::observe() { return reference_ops::observe(*daemon_, true); }

std::span<const std::byte> ReferenceAdapter::segment_bytes() { return daemon_->segment_bytes(); }

std::uint32_t ReferenceAdapter::owner_pid(Direction, bool) const { return shm::platform::current_pid(); }

shm::Status ReferenceAdapter::connect_to_copy(std::span<const std::byte> bytes, std::uint16_t version) {
  const std::string copy = path_ + ".copy";
  if (std::string error; !write_segment_copy(copy, bytes, error)) return make_error(ErrorCode::IoError, error);
  auto c = shm::Client::connect(copy, version);
  (void)shm::MmapSegment::remove(copy);
  if (!c) return c.error();
  return {};
}

namespace {

// Adapters registered by the program that links the suite (register_adapter).
std::map<std::string, AdapterFactory>& registered_adapters() {
  static std::map<std::string, AdapterFactory> registry;
  return registry;
}

std::unique_ptr<Adapter> make_builtin_adapter(const std::string& name) {
  if (name == "reference") return std::make_unique<ReferenceAdapter>();
  return nullptr;
}

}  // namespace

std::unique_ptr<Adapter> make_adapter(const std::string& name) {
  if (auto builtin = make_builtin_adapter(name)) return builtin;
  const auto it = registered_adapters().find(name);
  return it == registered_adapters().end() ? nullptr : it->second();
}

std::vector<std::string> adapter_names() {
  std::vector<std::string> names{"reference"};
  for (const auto& [name, factory] : registered_adapters()) names.push_back(name);
  return names;
}

bool register_adapter(const std::string& name, AdapterFactory factory) {
  if (name.empty() || !factory || name == "reference") return false;
  return registered_adapters().emplace(name, std::move(factory)).second;
}

}  // namespace memlink::conformance
