// memlink-conformance's command line: parses it, runs the chosen checks and
// reports (exit 0 all passed, 1 a check failed, 2 a usage or setup error).
// main.cpp is only its caller, so that a runner linked with a deliberately
// broken library (ctest suite-*-catches-*) is the same runner.
#pragma once

namespace memlink::conformance {

int run_main(int argc, char** argv);

}  // namespace memlink::conformance
