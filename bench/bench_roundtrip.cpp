// Round trip between two processes: the reference transport by payload and
// wait strategy, beside the floors (a bare shared cache line, a bare futex)
// and the peers (pipe, socketpair, eventfd, TCP loopback, Boost.Interprocess
// message_queue, ZeroMQ ipc://), all in one run of one harness.
#include "harness.hpp"
#include "peers.hpp"

namespace memlink::bench {
namespace {

void roundtrip(benchmark::State& state, const std::string& peer) {
  add_context();
  pin_parent();
  const auto payload = static_cast<std::size_t>(state.range(0));
  auto pp = make_peer(peer);
  if (!pp || !pp->setup(payload)) {
    state.SkipWithError(pp ? pp->error().c_str() : "unknown peer");
    return;
  }
  const pid_t child = fork_child([&] { pp->serve(); });
  if (!pp->after_fork()) {
    pp->stop();
    reap_child(child);
    state.SkipWithError(pp->error().c_str());
    return;
  }
  for (int i = 0; i < 200; ++i) pp->ping();  // warm up
  Samples samples;
  samples.reserve(1 << 20);
  for (auto _ : state) {
    const std::uint64_t t0 = now_ns();
    if (!pp->ping()) {
      state.SkipWithError("round trip failed");
      break;
    }
    samples.add(now_ns() - t0);
  }
  pp->stop();
  reap_child(child);
  pp->teardown();
  samples.report(state);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(peer);
}

void payloads(benchmark::internal::Benchmark* b) {
  for (int p : {0, 64, 1024, 4096}) b->Arg(p);
}

}  // namespace

BENCHMARK_CAPTURE(roundtrip, floor_cache_line, std::string("cache_line"))->Arg(8)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, floor_payload_copy, std::string("payload_copy"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, floor_futex, std::string("futex"))->Arg(8)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, memlink_spin, std::string("memlink_spin"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, memlink_adaptive, std::string("memlink_adaptive"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, memlink_block, std::string("memlink_block"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, memlink_loan, std::string("memlink_loan"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, pipe, std::string("pipe"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, socketpair, std::string("socketpair"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, eventfd, std::string("eventfd"))->Arg(8)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, tcp_loopback, std::string("tcp"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, boost_mq, std::string("boost_mq"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, zeromq_ipc, std::string("zeromq"))->Apply(payloads)->UseRealTime();
BENCHMARK_CAPTURE(roundtrip, iceoryx, std::string("iceoryx"))->Apply(payloads)->UseRealTime();

}  // namespace memlink::bench

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--memlink-iceoryx-echo") return memlink::bench::iceoryx_echo_main();
  return memlink::bench::bench_main(argc, argv);
}
