// The `q3vl` executable: parses the command line, dispatches to the selected
// subcommand (tools/<subcommand>.cpp) and turns errors into messages + exit codes.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>

#include "q3vl/error.h"
#include "q3vl/version.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {
std::vector<Subcommand>& registry() {
  static std::vector<Subcommand> subcommands;
  return subcommands;
}
}  // namespace

bool register_subcommand(const Subcommand& subcommand) {
  registry().push_back(subcommand);
  return true;
}

std::vector<Subcommand> registered_subcommands() {
  auto all = registry();
  std::sort(all.begin(), all.end(),
            [](const Subcommand& a, const Subcommand& b) { return std::string(a.name) < b.name; });
  return all;
}
}  // namespace q3vl::tools

int main(int argc, char** argv) {
  CLI::App app{"q3vl: Qwen3-VL vision-language models on ONNX Runtime"};
  app.set_version_flag("--version", std::string("q3vl ") + q3vl::kVersion);
  app.require_subcommand(1);

  std::map<CLI::App*, std::pair<std::string, q3vl::tools::RunFunction>> runners;
  for (const auto& subcommand : q3vl::tools::registered_subcommands()) {
    CLI::App* command = app.add_subcommand(subcommand.name, subcommand.description);
    runners[command] = {subcommand.name, subcommand.setup(*command)};
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  for (auto& [command, named_runner] : runners) {
    if (!command->parsed()) continue;
    try {
      return named_runner.second();
    } catch (const q3vl::Error& e) {
      std::fprintf(stderr, "q3vl %s: %s\n", named_runner.first.c_str(), e.what());
      return e.kind() == q3vl::ErrorKind::usage ? 2 : 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "q3vl %s: internal error: %s\n", named_runner.first.c_str(), e.what());
      return 1;
    }
  }
  return 2;
}
