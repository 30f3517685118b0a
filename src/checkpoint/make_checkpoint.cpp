#include "checkpoint/make_checkpoint.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <system_error>
#include <thread>
#include <vector>

#include "checkpoint/hf_files.h"
#include "checkpoint/presets.h"
#include "checkpoint/random_weights.h"
#include "checkpoint/weight_layout.h"
#include "core/staging_dir.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "q3vl/error.h"

namespace q3vl::checkpoint {
namespace {

namespace fs = std::filesystem;

// Tensors are generated and handed to the writer in blocks of this many
// elements (32 MB of bf16), so memory stays flat however large the tensor.
constexpr std::size_t kBlockElements = std::size_t{1} << 24;

void check_out_dir(const fs::path& out) {
  std::error_code error;
  const auto status = fs::status(out, error);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status)) {
    throw_error(ErrorKind::usage, out.string(), "--out", "a new or empty directory",
                "an existing file");
  }
  if (!fs::is_empty(out, error) || error) {
    throw_error(ErrorKind::usage, out.string(), "--out", "a new or empty directory",
                "a non-empty directory");
  }
}

void write_text_file(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw_error(ErrorKind::io, path.string(), "write failed");
}

// Throws once the caller's cancel flag is set; StagingDir's destructor then
// removes everything written so far.
void check_cancel(const MakeCheckpointOptions& options) {
  if (options.cancel != nullptr && options.cancel->load()) {
    throw_error(ErrorKind::runtime, options.out.string(), "interrupted; removed the partial output");
  }
}

// Streams a `transposed` expert tensor [E, A, B]: each expert's values are drawn in the
// Hub's order [B, A] (stream elements e*A*B ..) and written transposed, one expert at a
// time (30B-A3B: 3 M elements).
void write_transposed(const WeightSpec& weight, const MakeCheckpointOptions& options,
                      unsigned threads, const io::TensorSink& sink, Progress& progress) {
  const auto experts = static_cast<std::size_t>(weight.shape.at(0));
  const auto rows = static_cast<std::size_t>(weight.shape.at(1));  // A
  const auto cols = static_cast<std::size_t>(weight.shape.at(2));  // B
  std::vector<std::uint16_t> drawn(rows * cols), stored(rows * cols);
  for (std::size_t e = 0; e < experts; ++e) {
    check_cancel(options);
    fill_bf16_parallel(weight, options.seed, e * rows * cols, drawn, threads);
    for (std::size_t b = 0; b < cols; ++b) {
      for (std::size_t a = 0; a < rows; ++a) stored[a * cols + b] = drawn[b * rows + a];
    }
    sink(std::as_bytes(std::span<const std::uint16_t>(stored)));
    progress.advance(stored.size() * sizeof(std::uint16_t), weight.name);
  }
}

void write_weights(const fs::path& dir, const std::vector<WeightSpec>& weights,
                   const MakeCheckpointOptions& options, unsigned threads, Progress& progress) {
  std::vector<io::TensorSpec> specs;
  specs.reserve(weights.size());
  for (const auto& w : weights) specs.push_back({w.name, io::DType::bf16, w.shape});

  std::vector<std::uint16_t> block;
  std::size_t next = 0;
  io::write_checkpoint(
      dir, specs, options.max_shard_bytes,
      [&](const io::TensorSpec& spec, const io::TensorSink& sink) {
        // write_checkpoint asks for the specs in order.
        const WeightSpec& weight = weights.at(next++);
        if (weight.name != spec.name) {
          throw_error(ErrorKind::runtime, dir.string(), spec.name, weight.name,
                      "tensors requested out of order");
        }
        if (weight.transposed) {
          write_transposed(weight, options, threads, sink, progress);
          return;
        }
        const auto total = static_cast<std::uint64_t>(weight.numel());
        for (std::uint64_t first = 0; first < total; first += kBlockElements) {
          check_cancel(options);
          const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(kBlockElements, total - first));
          block.resize(count);
          fill_bf16_parallel(weight, options.seed, first, block, threads);
          sink(std::as_bytes(std::span<const std::uint16_t>(block)));
          progress.advance(count * sizeof(std::uint16_t), spec.name);
        }
      });
}

}  // namespace

ModelConfig requested_config(const MakeCheckpointOptions& options) {
  const bool has_preset = !options.preset.empty();
  const bool has_config = !options.config_file.empty();
  if (has_preset == has_config) {
    throw_error(ErrorKind::usage, "", "--preset / --config", "exactly one of them",
                has_preset ? "both" : "neither");
  }
  ModelConfig config =
      has_preset ? preset_config(options.preset) : load_model_config(options.config_file);
  if (options.text_layers) {
    const std::int64_t layers = *options.text_layers;
    if (layers <= 0) {
      throw_error(ErrorKind::usage, "", "--text-layers", "a positive layer count",
                  std::to_string(layers));
    }
    config.text.num_hidden_layers = layers;
    try {
      validate_model_config(config, "--text-layers " + std::to_string(layers));
    } catch (const Error& e) {
      throw_error(ErrorKind::usage, "", "--text-layers", "a layer count the config allows",
                  std::to_string(layers) + " (" + e.what() + ")");
    }
  }
  return config;
}

MakeCheckpointResult make_checkpoint(const MakeCheckpointOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig config = requested_config(options);
  const ConfigLayout layout = options.layout.value_or(
      options.config_file.empty() ? ConfigLayout::rope_scaling : config.layout);
  const std::string label =
      options.config_file.empty() ? options.preset : options.config_file.filename().string();
  const fs::path tokenizer_dir =
      options.tokenizer_dir.empty() ? default_tokenizer_dir() : options.tokenizer_dir;
  if (options.out.empty()) throw_error(ErrorKind::usage, "", "--out", "a directory", "nothing");
  check_out_dir(options.out);
  const unsigned threads =
      options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());

  const std::vector<WeightSpec> weights = qwen3vl_weights(config, options.expert_layout);
  MakeCheckpointResult result;
  result.tensor_count = weights.size();
  for (const auto& w : weights) result.weight_bytes += static_cast<std::uint64_t>(w.numel()) * 2;

  core::StagingDir staging(options.out);
  const fs::path& dir = staging.path();
  write_text_file(dir / "config.json", to_config_json(config, layout));
  io::write_json_file(dir / "generation_config.json", qwen3vl_generation_config());
  io::write_json_file(dir / "preprocessor_config.json", qwen3vl_preprocessor_config());
  io::write_json_file(dir / "video_preprocessor_config.json", qwen3vl_video_preprocessor_config());
  write_text_file(dir / "chat_template.jinja", qwen3vl_chat_template());
  write_tokenizer_files(tokenizer_dir, dir);
  core::fault_point("writing");
  check_cancel(options);
  {
    Progress progress("make-checkpoint " + label, result.weight_bytes, ProgressUnit::bytes,
                      options.progress);
    write_weights(dir, weights, options, threads, progress);
  }
  check_cancel(options);
  staging.commit(true);  // check_out_dir allowed only a missing or empty directory
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace q3vl::checkpoint
