// q3vl make-checkpoint: writes a deterministic random-weight Qwen3-VL checkpoint
// in the Hugging Face layout (src/checkpoint/make_checkpoint.h), for a preset or
// for any qwen3_vl config.json.
//
// Ctrl-C / SIGTERM: the handler only sets a flag that the writer polls; the
// library then removes its staging directory and this command exits 130 (the
// shell's code for SIGINT). A second signal gets the default action.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "checkpoint/make_checkpoint.h"
#include "checkpoint/presets.h"
#include "q3vl/error.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_interrupt(int) { g_interrupted.store(true); }

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;  // a second Ctrl-C terminates at once
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

constexpr int kInterruptedExit = 130;

RunFunction setup_make_checkpoint(CLI::App& command) {
  auto options = std::make_shared<checkpoint::MakeCheckpointOptions>();
  auto quiet = std::make_shared<bool>(false);
  std::string presets;
  for (const auto& name : checkpoint::preset_names()) presets += (presets.empty() ? "" : ", ") + name;

  auto* preset = command.add_option("--preset", options->preset, "Model size: " + presets);
  auto* config = command.add_option("--config", options->config_file,
                                    "A qwen3_vl config.json (either layout) to make weights for, "
                                    "instead of a preset");
  preset->excludes(config);
  config->excludes(preset);
  command.add_option("--seed", options->seed, "Seed of the weight generator")->required();
  command.add_option("--out", options->out, "Output directory (must not exist, or be empty)")
      ->required();
  command.add_option("--tokenizer-dir", options->tokenizer_dir,
                     "Directory with the Qwen3 tokenizer.json + tokenizer_config.json "
                     "(default: what scripts/setup.sh fetched)");
  auto layout = std::make_shared<std::string>();
  command.add_option("--layout", *layout,
                     "config.json layout: rope_scaling (the Hub's, transformers 4.57) or "
                     "rope_parameters (transformers 5.x); default: rope_scaling for a preset, "
                     "the --config file's own layout otherwise")
      ->check(CLI::IsMember({"rope_scaling", "rope_parameters"}));
  command.add_option("--max-shard-bytes", options->max_shard_bytes,
                     "Split the weights into shards above this many bytes (default 5e9, "
                     "transformers 4.57's 5GB)");
  auto moe_layout = std::make_shared<std::string>();
  command.add_option("--moe-layout", *moe_layout,
                     "MoE expert tensors: hub (the Hub's [E, H, 2I] / [E, I, H], default) or "
                     "hf5 (transformers 5.x save_pretrained's [E, 2I, H] / [E, H, I])")
      ->check(CLI::IsMember({"hub", "hf5"}));
  auto text_layers = std::make_shared<std::int64_t>(0);
  auto* text_layers_option = command.add_option("--text-layers", *text_layers,
                     "Override text_config.num_hidden_layers (a slice of a big model for benchmarks)");
  command.add_option("--threads", options->threads, "Generator threads (default: all cores)");
  command.add_flag("--quiet", *quiet, "Print nothing on success");

  return [options, quiet, layout, moe_layout, text_layers, text_layers_option]() {
    if (*quiet) options->progress = ProgressMode::quiet;
    if (*moe_layout == "hf5") options->expert_layout = checkpoint::ExpertLayout::transformers5;
    if (text_layers_option->count() > 0) options->text_layers = *text_layers;
    if (!layout->empty()) {
      options->layout = *layout == "rope_parameters" ? ConfigLayout::rope_parameters
                                                     : ConfigLayout::rope_scaling;
    }
    options->cancel = &g_interrupted;
    install_interrupt_handlers();
    checkpoint::MakeCheckpointResult result;
    try {
      result = checkpoint::make_checkpoint(*options);
    } catch (const Error& e) {
      if (!g_interrupted.load()) throw;
      std::fprintf(stderr, "q3vl make-checkpoint: %s\n", e.what());
      return kInterruptedExit;
    }
    if (!*quiet) {
      std::fprintf(stderr, "wrote %s: %zu tensors, %.3f GB of bf16 weights in %.1f s\n",
                   options->out.string().c_str(), result.tensor_count,
                   static_cast<double>(result.weight_bytes) / 1e9, result.seconds);
    }
    return 0;
  };
}

}  // namespace
}  // namespace q3vl::tools

Q3VL_REGISTER_SUBCOMMAND("make-checkpoint",
                         "Write a deterministic random-weight Hugging Face Qwen3-VL checkpoint",
                         q3vl::tools::setup_make_checkpoint);
