#include "memlink/shm/testing_hooks.hpp"

namespace memlink::shm::hooks {

#if defined(MEMLINK_TESTING_HOOKS)
namespace {
thread_local Interposer* t_interposer = nullptr;
}  // namespace

Interposer* interposer() noexcept { return t_interposer; }
void set_interposer(Interposer* i) noexcept { t_interposer = i; }
#endif

}  // namespace memlink::shm::hooks
