# Cross-compiles for 64-bit Windows with Debian's mingw-w64 (posix threads
# variant: std::thread and std::mutex need it). Used by the "windows" preset;
# scripts/test-windows runs the result under Wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(MEMLINK_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${MEMLINK_MINGW_PREFIX}-gcc-posix)
set(CMAKE_CXX_COMPILER ${MEMLINK_MINGW_PREFIX}-g++-posix)
set(CMAKE_RC_COMPILER ${MEMLINK_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${MEMLINK_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Static runtime: the .exe files run under Wine (or on Windows) without the
# mingw DLLs (libstdc++, libgcc, winpthread) next to them.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# ctest and gtest_discover_tests run the .exe files through Wine.
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/../../scripts/wine-run)
