// The release version of memlink-shm: the library, its tools and its suite.
// The one place it is written: CMakeLists.txt reads it from here for
// project(VERSION), the package's version file and the pkg-config file;
// scripts/lib.sh reads it for the scripts' --version; every program prints
// it. (The segment's layout version is another number: LAYOUT_VERSION in
// layout.hpp, SPEC C-LAYOUT.)
#pragma once

#define MEMLINK_SHM_VERSION_MAJOR 0
#define MEMLINK_SHM_VERSION_MINOR 2
#define MEMLINK_SHM_VERSION_PATCH 0
#define MEMLINK_SHM_VERSION "0.2.0"
