// Fuzz target: the input decodes to a sequence of transport operations, run
// on the reference (through the conformance suite's adapter) and on the model
// of SPEC.md; results and the whole observable state must agree after each.
#include <cstdio>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "memlink/conformance/adapter.hpp"
#include "memlink/model/model.hpp"

using namespace memlink;
using memlink::fuzz::FuzzInput;
using model::Direction;
using model::Priority;

namespace {

std::string code_name(const std::optional<shm::ErrorCode>& e) {
  return e ? std::string(shm::to_string(*e)) : std::string("Ok");
}

[[noreturn]] void differ(int step, const char* op, const std::string& what) {
  std::fprintf(stderr, "ops_differential: step %d (%s): %s\n", step, op, what.c_str());
  std::abort();
}

template <class R>
std::optional<shm::ErrorCode> code_of(const R& r) {
  if (r) return std::nullopt;
  return r.code();
}

void same_code(int step, const char* op, const model::Outcome& want, std::optional<shm::ErrorCode> got) {
  if (want.error != got)
    differ(step, op,
           "model says " + code_name(want.error) + " (" + std::string(spec::name(want.clause)) + "), reference says " +
               code_name(got));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzInput in(data, size);
  static const std::uint32_t kSlotSizes[] = {1, 16, 64, 4096};
  model::Config config;
  const auto first = in.take<std::uint8_t>();
  config.slot_size = kSlotSizes[first % 4];
  // Bits 2-3: the counters' age (C-AGE): positions and laps at their wraps.
  config.age = shm::kAllSegmentAges[((first >> 2) & 3) % 3];
  const std::uint32_t n = 1 + in.take<std::uint8_t>() % 6;
  config.segment_size = shm::layout_for(0, config.slot_size, n).used_bytes + in.take<std::uint8_t>() % 128;
  config.protocol_version = 3;
  auto m = model::Model::create(config);
  auto a = conformance::make_adapter("reference");
  if (!m || !a->create(config)) return 0;
  m->connect(3);
  if (!a->connect(3)) differ(0, "connect", "reference refused a fresh segment");

  for (int step = 1; step <= 64 && !in.empty(); ++step) {
    const auto op = in.take<std::uint8_t>();
    const Direction d = (op >> 4) & 1 ? Direction::DaemonToClient : Direction::ClientToDaemon;
    const auto p = static_cast<Priority>(((op >> 5) & 3) % 3);
    const bool client_side = d == Direction::ClientToDaemon ? true : false;
    if (m->client_count() == 0 && (op % 8) <= 4 && client_side) continue;  // needs a client
    switch (op % 8) {
      case 0: case 1: {
        const std::size_t len = in.take<std::uint16_t>() % (config.slot_size + 4);
        std::vector<std::byte> payload(len, std::byte(step));
        const auto want = m->write(d, p, payload);
        const auto got = a->write(d, p, payload);
        same_code(step, "write", want, code_of(got));
        if (got && *got != want.sequence) differ(step, "write", "sequence numbers differ");
        break;
      }
      case 2: {
        if (d == Direction::DaemonToClient && m->client_count() == 0) break;
        const auto want = m->read(d);
        const auto got = a->read(d);
        same_code(step, "read", want, code_of(got));
        if (got && !(*got == *want.message)) differ(step, "read", "delivered messages differ");
        break;
      }
      case 3: {
        if (d == Direction::DaemonToClient && m->client_count() == 0) break;
        const auto want = m->peek(d);
        const auto got = a->peek(d);
        same_code(step, "peek", want, code_of(got));
        break;
      }
      case 4:
        if (const auto c = static_cast<model::Corruption>((op >> 3) % model::kCorruptionCount);
            m->oldest_is_corruptible(d, p, c)) {
          m->corrupt_oldest(d, p, c);
          (void)a->corrupt_oldest(d, p, c);
        }
        break;
      case 5: {
        const auto v = in.take<std::uint16_t>();
        same_code(step, "set_backpressure", m->set_backpressure(v), code_of(a->set_backpressure(v)));
        break;
      }
      case 6:
        if ((op >> 7) && m->client_count() > 0) {
          m->disconnect();
          a->disconnect();
        } else if (m->client_count() < 3) {
          const std::uint16_t v = (op >> 6) & 1 ? 3 : 4;
          same_code(step, "connect", m->connect(v), code_of(a->connect(v)));
        }
        break;
      default: {
        if (m->client_count() == 0 && d == Direction::ClientToDaemon) break;
        std::vector<std::byte> payload(in.take<std::uint8_t>() % (config.slot_size + 1), std::byte(7));
        const auto want = m->stop_writer(d, p, model::WriterStop::AfterFill, payload);
        same_code(step, "stop_writer", want, code_of(a->stop_writer(d, p, model::WriterStop::AfterFill, payload)));
        break;
      }
    }
    if (!(m->view() == a->observe())) differ(step, "state", "observable state differs");
  }
  return 0;
}
