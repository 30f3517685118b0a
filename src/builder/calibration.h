// GPTQ calibration: the conversations a build runs through the model to learn what each
// decoder matmul's inputs look like (builder/gptq.h), and the run that records them.
//
// The set is either `--calibration FILE`, JSON Lines with one conversation per line in
// the shape `q3vl run --messages` reads (an array of OpenAI-style messages, or an object
// with "messages"; relative media paths are taken from the file's directory), or the
// built-in set: varied text-only prompts and prompts with generated images (gradients,
// stripes, checkerboards, noise, shapes; several sizes and aspect ratios), in English,
// Chinese, code and numbers. The built-in set is synthetic: with a real model, prompts
// like the ones it will serve (real photos, documents, the target language) calibrate it
// better.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "builder/calibration_stats.h"
#include "q3vl/messages.h"

namespace q3vl::builder {

struct CalibrationSet {
  std::string source;  // "built-in" or the file's path
  std::vector<std::vector<text::Message>> conversations;
};

CalibrationSet builtin_calibration_set();

// Throws q3vl::Error: io (unreadable file), format (a line that is not a conversation:
// names the file and line), usage (no conversations).
CalibrationSet load_calibration_set(const std::filesystem::path& file);

struct CalibrationRun {
  std::int64_t conversations = 0;
  std::int64_t tokens = 0;  // prompt tokens run through the decoder
};

// Runs every conversation's prompt (chat template with the generation prompt; images
// through vision.onnx) through the package in `package_dir`, whose decoder was written
// with LinearFormat::expose_input, and appends each "linear_input.<scope>" output to
// `stats` under <scope>. `on_conversation(done, total)` is called after each one.
// Throws q3vl::Error as the runtime does for a bad package or medium, naming it.
CalibrationRun record_linear_inputs(const std::filesystem::path& package_dir, const CalibrationSet& set,
                                    CalibrationStats& stats,
                                    const std::function<void(std::int64_t, std::int64_t)>& on_conversation);

}  // namespace q3vl::builder
