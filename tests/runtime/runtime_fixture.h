// Shared setup of the runtime tests: FP32 packages of the CTest fixture checkpoints
// (the presets tiny, tiny-untied and the config checkpoint custom), built once per
// test run with `q3vl build`, and the golden cases' OpenAI-shape messages with media
// paths made absolute.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "q3vl/messages.h"
#include "q3vl/model.h"
#include "support/golden.h"

namespace q3vl::testing {

// shared_dir()/rt-package-<preset>, built from checkpoint_dir(preset) if absent.
// "<preset>:kv16" / "<preset>:kv8" is the same package built with --kv-cache float16 / int8.
// Fails the calling test (ASSERT) via an exception if `q3vl build` fails.
std::filesystem::path runtime_package(const std::string& preset);
// Loaded once per process and preset.
std::shared_ptr<const Model> runtime_model(const std::string& preset, const ModelOptions& options = {});

// case.json "messages" with every media url resolved against the goldens directory.
std::vector<text::Message> golden_messages(const GoldenCase& c);

// Every checkpoint with HF goldens: the manifest's presets, then its config
// checkpoints (manifest "configs", made with make-checkpoint --config).
std::vector<std::string> golden_checkpoints(const GoldenSet& set);

// case.json "messages" with absolute media urls, written as a --messages file in
// this process's work_dir(); returns its path.
std::filesystem::path golden_messages_file(const GoldenCase& c);

// Greedy options: temperature 0, `steps` tokens, no stop token / string.
GenerateOptions greedy_options(const Model& model, std::int64_t steps);

}  // namespace q3vl::testing
