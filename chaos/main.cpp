// memlink-chaos: see cli.hpp and docs/chaos.md.
#include "cli.hpp"

int main(int argc, char** argv) { return memlink::chaos::run_main(argc, argv); }
