// Survive a peer that shrinks the segment under our mapping (SPEC M-TRUNCATE).
//
// A MAP_SHARED mapping of a file that another process truncates raises
// SIGBUS on the next access past the new end of file, and SIGBUS kills. Any
// process that can write the segment can truncate it, so without this a
// careless or hostile peer kills the daemon and every client.
//
// Every mapping of a segment is registered here. A process-wide SIGBUS
// handler looks the faulting address up; inside a registered mapping it maps
// anonymous zero pages over the whole mapping (MAP_FIXED), marks it lost and
// returns, so the faulting load or store completes on private memory and the
// thread goes on. The transport checks lost() after every operation and turns
// it into CorruptSegment naming the cause; nothing read from the replaced
// pages is delivered, nothing written to them is acknowledged. A fault
// anywhere else goes to the handler that was installed before ours (or kills
// as SIGBUS always did). This is what Wayland's wl_shm_buffer_begin_access
// does for client buffers.
//
// Why not memfd + F_SEAL_SHRINK: seals need the fd passed over a socket;
// memlink peers meet by path (a file or a POSIX shm name), which cannot carry
// seals. Windows needs nothing: a file with a mapped view cannot be shrunk
// (SetEndOfFile fails with ERROR_USER_MAPPED_FILE), so register() is a no-op
// there. macOS raises SIGBUS the same way, and the same handler applies.
//
// Limits: kMaxMappings mappings at a time per process (register() returns
// kNoGuard beyond; the mapping then works unguarded). A handler another
// library installs after ours (a fuzzer, a crash reporter) replaces ours
// unless it chains to the previous one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memlink::shm::fault_guard {

inline constexpr int kNoGuard = -1;
inline constexpr int kMaxMappings = 256;

// Guards [base, base + size). `writable` is the protection the replacement
// pages get beside PROT_READ. Thread-safe; installs the handler on first use.
int register_mapping(void* base, std::size_t size, bool writable) noexcept;

// Stops guarding; call before munmap. kNoGuard is ignored.
void unregister_mapping(int guard) noexcept;

// True once an access inside the mapping faulted (and the mapping was
// replaced by private zero pages): the segment is gone for this process.
bool lost(int guard) noexcept;

// Does what the handler does, now: replaces the mapping with private zero
// pages and marks it lost. For a shrink noticed before any access faulted
// (the backing file is smaller than the mapping), so that every later access
// sees one consistent, obviously dead mapping. False if it could not.
bool abandon(int guard) noexcept;

// How many faults the handler has absorbed in this process, for tests.
std::uint64_t absorbed_faults() noexcept;

}  // namespace memlink::shm::fault_guard
