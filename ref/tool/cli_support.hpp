// What every command-line program of this repository does the same way:
// --version prints one line and exits 0; --help exits 0; a usage error (an
// unknown flag, a bad value, a missing argument) prints CLI11's message and
// exits 2, as README documents (CLI11 itself would exit 104-109).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "memlink/shm/layout.hpp"
#include "memlink/shm/version.hpp"

namespace memlink::cli {

inline constexpr int kExitUsage = 2;

// "PROGRAM 0.2.0 (layout version 2)": the release and the segment layout it speaks.
inline std::string version_line(const std::string& program) {
  return program + " " MEMLINK_SHM_VERSION " (layout version " + std::to_string(shm::LAYOUT_VERSION) + ")";
}

// Adds --version (-V) printing version_line(program).
inline void add_version_flag(CLI::App& app, const std::string& program) {
  app.set_version_flag("-V,--version", version_line(program), "Print the version and exit");
}

// Parses argv; returns the exit status to leave with (help, version, usage
// error), or nothing when the program should go on.
inline std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace memlink::cli
