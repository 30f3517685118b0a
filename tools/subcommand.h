// How a `q3vl <subcommand>` plugs into the one `q3vl` executable.
//
// Each tools/<subcommand>.cpp defines a setup function that declares the
// subcommand's options on a CLI11 sub-app and returns the function that runs it,
// then registers itself with a namespace-scope Q3VL_REGISTER_SUBCOMMAND. main.cpp
// owns parsing and error reporting: a run function returns an exit code or throws
// q3vl::Error, which main prints as "q3vl <name>: <message>" with a non-zero exit.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace q3vl::tools {

using RunFunction = std::function<int()>;
using SetupFunction = RunFunction (*)(CLI::App& command);

struct Subcommand {
  const char* name;
  const char* description;
  SetupFunction setup;
};

// Called during static initialisation by Q3VL_REGISTER_SUBCOMMAND; returns true.
bool register_subcommand(const Subcommand& subcommand);
// Every registered subcommand, sorted by name.
std::vector<Subcommand> registered_subcommands();

}  // namespace q3vl::tools

#define Q3VL_REGISTER_SUBCOMMAND(name, description, setup) \
  [[maybe_unused]] static const bool q3vl_subcommand_registered_ =   \
      ::q3vl::tools::register_subcommand({name, description, setup})
