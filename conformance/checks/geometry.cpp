// The geometry check (G-FIT, G-DIST, G-STRIDE, G-PLACE): any segment and
// slot size through the adapter, against the model's arithmetic.
#include "compare.hpp"
#include "driver_adapter.hpp"
#include "memlink/conformance/adapter.hpp"
#include "rc_runner.hpp"

namespace memlink::conformance {

// G-FIT / G-DIST / G-STRIDE through the adapter: any segment and slot size.
CheckResult run_geometry(const Params& params) {
  return rc_check("geometry", params, depth_budget(params, 50, 300, 3000), 100, [&] {
    model::Config c;
    // Sizes the transport accepts (D-LIMITS); within them, G-FIT decides.
    c.slot_size = params.limits.slot(*rc::gen::inRange<std::uint32_t>(1, shm::MAX_SLOT_SIZE + 1));
    c.segment_size = params.limits.segment(*rc::gen::weightedOneOf<std::size_t>({
        {3, rc::gen::inRange<std::size_t>(shm::MIN_SEGMENT_SIZE, 64 * 1024)},
        {3, rc::gen::inRange<std::size_t>(64 * 1024, 4 << 20)},
        {1, rc::gen::just(shm::MIN_SEGMENT_SIZE)},
    }));
    const auto n = model::slots_per_direction(c.segment_size, c.slot_size);
    auto adapter = adapter_for(params);
    const auto created = adapter->create(c);
    params.record(ClauseId::G_FIT);
    params.record(ClauseId::G_STRIDE);
    params.record(ClauseId::G_PLACE);
    if (!n) {
      if (created.ok())
        fail_case(ClauseId::G_FIT, "a " + std::to_string(c.segment_size) + "-byte segment cannot hold one slot of " +
                                       std::to_string(c.slot_size) +
                                       " bytes per priority and direction, yet creation succeeded");
      if (created.code() != shm::ErrorCode::InvalidArgument)
        fail_case(ClauseId::G_FIT,
                  "too-small segment refused with " + created.error().message() + ", not InvalidArgument");
      return;
    }
    if (!created)
      fail_case(ClauseId::G_FIT, "creating a valid segment (" + std::to_string(c.segment_size) + " bytes, slot " +
                                     std::to_string(c.slot_size) + ") failed: " + created.error().message());
    compare_geometry(params, model::Model::create(c)->view(), adapter->observe());
  });
}

}  // namespace memlink::conformance
