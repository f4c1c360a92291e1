// The checksum check (S-CHECKSUM): the reference's CRC32C against the
// definition.
#include "memlink/shm/checksum.hpp"

#include <span>

#include "crc32c_by_definition.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {

// S-CHECKSUM: the reference's CRC32C against the definition.
CheckResult run_checksum(const Params& params) {
  return rc_check("checksum", params, depth_budget(params, 100, 1000, 10000), 4096, [&] {
    const auto data = *rc::gen::container<std::vector<std::uint8_t>>(rc::gen::arbitrary<std::uint8_t>());
    params.record(ClauseId::S_CHECKSUM);
    if (shm::crc32c(data.data(), data.size()) != crc32c_by_definition(std::as_bytes(std::span(data))))
      fail_case(ClauseId::S_CHECKSUM,
                "crc32c of " + std::to_string(data.size()) + " bytes differs from the definition");
  });
}

}  // namespace memlink::conformance
