#include "driver_adapter.hpp"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>

#include "driver_json.hpp"
#include "drivers/reference/reference_ops.hpp"
#include "launcher.hpp"
#include "segment_fields.hpp"

namespace memlink::conformance {
namespace {

using driver::DriverProcess;
using driver::Reply;
using nlohmann::json;
using shm::ErrorCode;
using shm::make_error;

shm::Error no_client() { return make_error(ErrorCode::Disconnected, "no client connected"); }

shm::Status status_of(const Reply& r) {
  if (r.ok()) return {};
  return r.error();
}

class DriverAdapter final : public Adapter {
 public:
  DriverAdapter(std::shared_ptr<driver::Launcher> launcher, const Params& params)
      : launcher_(std::move(launcher)), params_(params) {
    hello_ = launcher_->hello();
    path_ = driver_segment_path("adapter");
  }
  ~DriverAdapter() override {
    end_processes();
    cleanup_through(*launcher_, path_);
    cleanup_files();
  }

  std::string name() const override { return "driver:" + hello_.name; }
  bool claims(const std::string& capability) const override { return hello_.has(capability); }

  shm::Status create(const model::Config& config) override {
    end_processes();
    cleanup_through(*launcher_, path_);
    cleanup_files();
    config_ = config;
    daemon_ = launcher_->start("daemon");
    capacity_.reset();
    slot_size_.reset();
    // stale_after_ms 0: the model's recover() means the stopped holders died
    // long ago, so a consumer judges their slots stale at first sight
    // (DRIVER.md D-STOPS), also at a read after recover that first meets one.
    json request = {{"op", "create"},
                    {"segment", path_},
                    {"segment_size", config.segment_size},
                    {"slot_size", config.slot_size},
                    {"protocol_version", config.protocol_version},
                    {"heartbeat_ms", 100},
                    {"heartbeat_timeout_ms", 60000},
                    {"daemon_timeout_ms", 60000},
                    {"stale_after_ms", 0}};
    // Only a driver that claims `aged` is asked for an aged segment (C-AGE).
    if (config.age != shm::SegmentAge::Fresh) request["age"] = shm::to_string(config.age);
    const Reply r = create_fitted(*daemon_, request, params_);
    if (r.ok() && r.body.contains("capacity")) {
      std::array<std::uint32_t, 3> c{};
      for (std::size_t p = 0; p < 3; ++p) c[p] = driver::integer<std::uint32_t>(r.body["capacity"].at(p));
      capacity_ = c;
    }
    if (r.ok() && r.body.contains("slot_size")) slot_size_ = driver::integer<std::uint32_t>(r.body, "slot_size");
    return status_of(r);
  }

  std::optional<std::uint32_t> reported_slot_size() const override { return slot_size_; }
  std::optional<std::array<std::uint32_t, 3>> reported_capacity() const override { return capacity_; }

  shm::Status connect(std::uint16_t version) override {
    auto p = launcher_->start("client " + std::to_string(clients_.size() + 1));
    const Reply r = p->call(connect_request(path_, version));
    if (!r.ok()) {
      launcher_->give_back(std::move(p));
      return r.error();
    }
    clients_.push_back(std::move(p));
    return {};
  }

  // The client's process lives on, as a disconnected client's process does
  // in process: a writer or reader it stopped (D-STOPS) stays alive until
  // recover says it died, as the model has it.
  void disconnect() override {
    if (clients_.empty()) return;
    (void)clients_.back()->call({{"op", "disconnect"}});
    retired_.push_back(std::move(clients_.back()));
    clients_.pop_back();
  }

  shm::Status reopen() override {
    if (clients_.empty()) return no_client();
    const std::uint16_t version = config_.protocol_version;
    (void)clients_.front()->call({{"op", "disconnect"}});
    return status_of(clients_.front()->call(connect_request(path_, version)));
  }

  shm::Status shutdown() override { return status_of(daemon_->call({{"op", "shutdown"}})); }

  shm::Result<std::uint64_t> write(Direction d, Priority p, std::span<const std::byte> data) override {
    DriverProcess* w = writer(d);
    if (w == nullptr) return no_client();
    return sequence_of(w->call({{"op", "write"}, {"priority", static_cast<int>(p)}, {"data", driver::to_hex(data)}}));
  }

  shm::Result<std::uint64_t> write_blocking(Direction d, Priority p, std::span<const std::byte> data,
                                            std::chrono::nanoseconds timeout) override {
    DriverProcess* w = writer(d);
    if (w == nullptr) return no_client();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
    return sequence_of(w->call({{"op", "write_blocking"}, {"priority", static_cast<int>(p)},
                                {"data", driver::to_hex(data)}, {"timeout_ms", ms.count()}},
                               ms + std::chrono::seconds(10)));
  }

  shm::Result<model::Message> read(Direction d) override {
    DriverProcess* r = reader(d);
    if (r == nullptr) return no_client();
    return message_of(r->call({{"op", "read"}}));
  }

  shm::Result<PeekInfo> peek(Direction d) override {
    DriverProcess* r = reader(d);
    if (r == nullptr) return no_client();
    const Reply reply = r->call({{"op", "peek"}});
    if (!reply.ok()) return reply.error();
    return PeekInfo{driver::priority(reply.body), driver::integer_or<std::uint64_t>(reply.body, "sequence", 0),
                    driver::integer<std::uint32_t>(reply.body, "length")};
  }

  shm::Status set_backpressure(std::uint32_t permille) override {
    return status_of(daemon_->call({{"op", "set_backpressure"}, {"permille", permille}}));
  }

  shm::Result<std::uint64_t> stop_writer(Direction d, Priority p, model::WriterStop where,
                                         std::span<const std::byte> data) override {
    DriverProcess* w = writer(d);
    if (w == nullptr) return no_client();
    return sequence_of(w->call({{"op", "stop_writer"}, {"priority", static_cast<int>(p)},
                                {"where", where == model::WriterStop::AfterClaim ? "claim" : "fill"},
                                {"data", driver::to_hex(data)}}));
  }

  shm::Result<model::Message> stop_reader(Direction d, model::ReaderStop where) override {
    DriverProcess* r = reader(d);
    if (r == nullptr) return no_client();
    return message_of(r->call({{"op", "stop_reader"}, {"where", where == model::ReaderStop::AfterTake ? "take" : "complete"}}));
  }

  shm::Status recover(Direction d) override {
    DriverProcess* r = reader(d);
    if (r == nullptr) return no_client();
    return status_of(r->call({{"op", "recover"}}));
  }

  shm::Status corrupt_oldest(Direction d, Priority p, model::Corruption c) override {
    return status_of(daemon_->call({{"op", "corrupt"}, {"direction", driver::direction_name(d)},
                                    {"priority", static_cast<int>(p)}, {"what", driver::corruption_name(c)}}));
  }

  model::View observe() override {
    const Reply r = daemon_->call({{"op", "observe"}});
    if (!r.ok())
      throw driver::DriverFailure("driver '" + launcher_->name() +
                                  "' (daemon): observe failed: " + r.error().message());
    try {
      return driver::view_from_json(r.body.at("view"));
    } catch (const json::exception& e) {
      throw driver::DriverFailure(
          "driver '" + launcher_->name() + "' (daemon): [D-CONTROL] observe's view is malformed: " + e.what(),
          spec::DriverRule::D_CONTROL);
    }
  }

  // spec_layout: the segment is the file at path_; the suite reads it itself.
  std::span<const std::byte> segment_bytes() override {
    // Copied into the buffer in place: a span handed out before stays valid
    // while the size is unchanged (a check may hold one across a re-read).
    const std::vector<std::byte> now = read_segment_file(path_);
    bytes_.resize(now.size());
    std::copy(now.begin(), now.end(), bytes_.begin());
    return bytes_;
  }

  std::uint32_t owner_pid(Direction d, bool is_writer) const override {
    const DriverProcess* p = is_writer ? writer(d) : reader(d);
    return p == nullptr ? 0 : static_cast<std::uint32_t>(p->pid());
  }

  shm::Status connect_to_copy(std::span<const std::byte> bytes, std::uint16_t version) override {
    const std::string copy = path_ + ".copy";
    if (std::string error; !write_segment_copy(copy, bytes, error)) return make_error(ErrorCode::IoError, error);
    auto p = launcher_->start("client of a copy");
    const Reply r = p->call(connect_request(copy, version));
    launcher_->give_back(std::move(p));
    ::unlink(copy.c_str());
    return status_of(r);
  }

 private:
  static json connect_request(const std::string& path, std::uint16_t version) {
    // stale_after_ms 0: the model's recover() means the stopped holders died
    // long ago, so a consumer judges their slots stale at first sight
    // (DRIVER.md D-STOPS), also at a read after recover that first meets one.
    return {{"op", "connect"},
            {"segment", path},
            {"protocol_version", version},
            {"daemon_timeout_ms", 60000},
            {"stale_after_ms", 0}};
  }

  DriverProcess* writer(Direction d) const {
    if (d == Direction::DaemonToClient) return daemon_.get();
    return clients_.empty() ? nullptr : clients_.front().get();
  }
  DriverProcess* reader(Direction d) const {
    if (d == Direction::ClientToDaemon) return daemon_.get();
    return clients_.empty() ? nullptr : clients_.front().get();
  }

  shm::Result<std::uint64_t> sequence_of(const Reply& r) const {
    if (!r.ok()) return r.error();
    return driver::integer_or<std::uint64_t>(r.body, "sequence", 0);
  }

  static shm::Result<model::Message> message_of(const Reply& r) {
    if (!r.ok()) return r.error();
    const auto data = driver::from_hex(r.body.value("data", std::string()));
    if (!data) {
      const std::string what = "the driver's \"data\" is not hex: " + driver::shown(r.body);
      throw driver::DriverFailure("[D-BYTES] " + what, spec::DriverRule::D_BYTES, what);
    }
    return model::Message{driver::priority(r.body), driver::integer_or<std::uint64_t>(r.body, "sequence", 0), *data};
  }

  void cleanup_files() { reference_ops::remove_segment_files(path_); }

  // Every process goes back to the launcher (reset, for the next case).
  void end_processes() {
    for (auto* list : {&retired_, &clients_})
      for (auto& p : *list) launcher_->give_back(std::move(p));
    retired_.clear();
    clients_.clear();
    launcher_->give_back(std::move(daemon_));
  }

  std::shared_ptr<driver::Launcher> launcher_;
  Params params_;
  std::string path_;
  driver::Hello hello_;
  model::Config config_{};
  std::unique_ptr<DriverProcess> daemon_;
  std::vector<std::unique_ptr<DriverProcess>> clients_;  // oldest first
  std::vector<std::unique_ptr<DriverProcess>> retired_;  // disconnected, still alive
  std::vector<std::byte> bytes_;
  std::optional<std::array<std::uint32_t, 3>> capacity_;
  std::optional<std::uint32_t> slot_size_;
};

}  // namespace

Reply create_fitted(DriverProcess& p, json request, const Params& params, std::chrono::milliseconds timeout) {
  for (;;) {
    Reply r = p.call(request, timeout);
    const std::size_t size = request.value("segment_size", std::size_t{0});
    if (r.ok() || params.claims("spec_layout") || r.error().code != shm::ErrorCode::InvalidArgument ||
        size >= params.limits.max_segment)
      return r;
    request["segment_size"] = params.limits.segment(2 * size);
  }
}

void cleanup_through(driver::Launcher& launcher, const std::string& path) {
  if (!launcher.hello().has("cleanup")) return;
  try {
    auto p = launcher.start("cleanup");
    (void)p->call({{"op", "cleanup"}, {"segment", path}});
    launcher.give_back(std::move(p));
  } catch (const driver::DriverFailure&) {
    // Cleaning up after a case is a courtesy; a driver that fails at it
    // fails the next request that matters, with its own error.
  }
}

std::unique_ptr<Adapter> adapter_for(const Params& params) {
  // The reference goes through its driver, in process, as any transport
  // goes through its own; other in-process adapters are called directly.
  if (params.driver.empty() && params.adapter != "reference") return make_adapter(params.adapter);
  return std::make_unique<DriverAdapter>(launcher_for(params), params);
}

std::string driver_segment_path(const std::string& tag) {
  static std::atomic<int> counter{0};
  return "/dev/shm/memlink-conformance-driver-" + std::to_string(::getpid()) + "-" + tag + "-" +
         std::to_string(counter.fetch_add(1));
}

}  // namespace memlink::conformance
