# Cross-compiles for 64-bit ARM Linux with Debian's aarch64-linux-gnu
# toolchain; the test libraries (GoogleTest, RapidCheck) come from Debian's
# arm64 packages (multiarch: /usr/lib/aarch64-linux-gnu). Used by the
# "aarch64" preset; scripts/test-aarch64 runs the result under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Programs are the build machine's; libraries and packages only the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)

# ctest and gtest_discover_tests run the programs through qemu-user, with
# the cross toolchain's C and C++ runtime as the target's root. (qemu on x86
# runs ARM code with x86's memory ordering: a portability check, not a
# memory-model one; the exploration's weak-memory search is that.)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
