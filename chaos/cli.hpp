// memlink-chaos's command line: parses it, runs the fault runner
// (runner.hpp) and returns the exit status (0 no violation, 1 a violation,
// 2 a usage or setup error). main.cpp is only its caller, so that a runner
// linked with a deliberately broken library (ctest chaos-catches-*) is the
// same runner.
#pragma once

namespace memlink::chaos {

int run_main(int argc, char** argv);

}  // namespace memlink::chaos
