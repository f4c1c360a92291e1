// memlink-conformance: see cli.hpp and docs/conformance.md.
#include "cli.hpp"

int main(int argc, char** argv) { return memlink::conformance::run_main(argc, argv); }
