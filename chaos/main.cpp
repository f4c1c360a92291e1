// memlink-chaos: see runner.hpp and docs/chaos.md.
#include "runner.hpp"

int main(int argc, char** argv) { return memlink::chaos::run_main(argc, argv); }
