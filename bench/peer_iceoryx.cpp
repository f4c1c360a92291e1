// Eclipse iceoryx (Debian's 2.0.3) as a round-trip peer: an untyped
// publisher/subscriber pair each way, zero-copy chunks, each side sleeping
// in a WaitSet (iceoryx's usual blocking wait). RouDi, iceoryx's daemon,
// must run: scripts/bench starts and stops it and sets MEMLINK_BENCH_ICEORYX.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "peers.hpp"

namespace memlink::bench {
namespace {

constexpr const char* kEchoFlag = "--memlink-iceoryx-echo";

iox::capro::ServiceDescription topic(const char* event) { return {"memlink", "bench", iox::capro::IdString_t(iox::cxx::TruncateToCapacity, event)}; }

void init_runtime(const std::string& name) {
  static bool done = false;  // once per process (the parent runs many benchmarks)
  if (done) return;
  done = true;
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
}

class Iceoryx final : public PingPong {
 public:
  bool setup(std::size_t payload) override {
    if (std::getenv("MEMLINK_BENCH_ICEORYX") == nullptr)
      return error_ = "iceoryx: RouDi is not running (scripts/bench starts it)", false;
    n_ = static_cast<std::uint32_t>(std::max<std::size_t>(1, payload));
    return true;
  }
  // A forked child would inherit the parent's iceoryx runtime (a process
  // singleton): the echo side runs in a fresh image of this program instead.
  void serve() override {
    ::execl("/proc/self/exe", "bench_roundtrip", kEchoFlag, nullptr);
    ::_exit(127);
  }
  static int echo_main() {
    init_runtime("memlink-bench-echo-" + std::to_string(::getpid()));
    iox::popo::UntypedSubscriber sub(topic("ping"));
    iox::popo::UntypedPublisher pub(topic("pong"));
    iox::popo::WaitSet<> ws;
    ws.attachState(sub, iox::popo::SubscriberState::HAS_DATA).or_else([](auto) { std::abort(); });
    for (;;) {
      (void)ws.timedWait(iox::units::Duration::fromMilliseconds(100));
      for (;;) {
        auto in = sub.take();
        if (in.has_error()) break;
        const void* data = in.value();
        const auto size = iox::mepoo::ChunkHeader::fromUserPayload(data)->userPayloadSize();
        const bool stop = size == 1 && *static_cast<const char*>(data) == 'S';
        auto out = pub.loan(size);
        if (!out.has_error()) {
          std::memcpy(out.value(), data, size);
          pub.publish(out.value());
        }
        sub.release(data);
        if (stop) return 0;
      }
    }
  }
  bool after_fork() override {
    init_runtime("memlink-bench-" + std::to_string(::getpid()));
    pub_.emplace(topic("ping"));
    sub_.emplace(topic("pong"));
    ws_.emplace();
    if (ws_->attachState(*sub_, iox::popo::SubscriberState::HAS_DATA).has_error())
      return error_ = "iceoryx: WaitSet attach failed", false;
    // Until both sides have found each other, pings are lost: ping until a pong comes back.
    for (int i = 0; i < 500; ++i) {
      send('P');
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (sub_->hasData()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        drain();
        return true;
      }
    }
    return error_ = "iceoryx: the echo process never answered", false;
  }
  bool ping() override {
    if (!send('P')) return false;
    for (;;) {
      auto in = sub_->take();
      if (!in.has_error()) {
        sub_->release(in.value());
        return true;
      }
      (void)ws_->wait();
    }
  }
  void stop() override {
    const std::uint32_t keep = n_;
    n_ = 1;
    send('S');
    n_ = keep;
  }
  void teardown() override {
    ws_.reset();
    sub_.reset();
    pub_.reset();
  }

 private:
  bool send(char c) {
    auto chunk = pub_->loan(n_);
    if (chunk.has_error()) return false;
    std::memset(chunk.value(), c, n_);
    pub_->publish(chunk.value());
    return true;
  }
  void drain() {
    for (auto in = sub_->take(); !in.has_error(); in = sub_->take()) sub_->release(in.value());
  }
  std::uint32_t n_ = 1;
  std::optional<iox::popo::UntypedPublisher> pub_;
  std::optional<iox::popo::UntypedSubscriber> sub_;
  std::optional<iox::popo::WaitSet<>> ws_;
};

}  // namespace

std::unique_ptr<PingPong> make_iceoryx_peer() { return std::make_unique<Iceoryx>(); }
int iceoryx_echo_main() { return Iceoryx::echo_main(); }

}  // namespace memlink::bench
