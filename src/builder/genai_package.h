// `q3vl build --target ort-genai`: the graphs and files of a package that ONNX Runtime
// GenAI (onnxruntime-genai >= 0.18, model type qwen3_vl) loads and runs.
//
// Package layout (the caller, build_package, stages and commits the directory):
//   vision.onnx    builder/genai_vision_graph.h   pixel_values + image_grid_thw -> image_features
//   embed.onnx     builder/genai_embed_graph.h    input_ids + image_features -> inputs_embeds
//   decoder.onnx   builder/text_decoder.h         DeepstackInput::packed (or none)
//   genai_config.json, processor_config.json      builder/genai_config.h
//   tokenizer.json, tokenizer_config.json (with the chat template), and the other HF side files
//
// DeepStack layout (GenAI passes one feature tensor from vision to embedding to decoder):
// every tensor between the graphs is H * (1 + K) wide, [merged | tap 0 | ... | tap K-1]
// on image rows and [token embedding | 0 ... 0] on text rows; the decoder reads columns
// [0, H) as its input and adds columns [H(1+k), H(2+k)) after layer k, exactly HF's
// _deepstack_process. genai_config's decoder.hidden_size is that width.
//
// Not a q3vl package: no q3vl.json is written (`q3vl run` says so and why).
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "builder/graph.h"
#include "builder/linear.h"
#include "builder/text_decoder.h"
#include "builder/vision_graph.h"
#include "builder/weight_reader.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "q3vl/config.h"
#include "q3vl/package.h"

namespace q3vl::builder {

struct GenaiGraphOptions {
  DecoderGraphOptions decoder;  // its `deepstack` is set from `deepstack` below
  VisionGraphOptions vision;
  WeightPrecision embed_precision = WeightPrecision::fp32;
  bool deepstack = true;
};

// Writes one graph: (name, precision label, body). The caller owns files and manifest.
using GraphWriter = std::function<void(const std::string& name, const std::string& precision,
                                       const std::function<void(Graph&)>& body)>;

// Writes vision, embed and decoder through `write`. Throws as the graph writers do.
void write_genai_graphs(const io::Checkpoint& checkpoint, WeightReader& weights, const ModelConfig& config,
                        const GenaiGraphOptions& options, const GraphWriter& write);

// Writes genai_config.json, processor_config.json and the tokenizer files into `dir`.
// Throws q3vl::Error: io (unreadable/unwritable files), config (see genai_config_json).
void write_genai_side_files(const std::filesystem::path& model_dir, const std::filesystem::path& dir,
                            const ModelConfig& config, const TokenIds& tokens, const io::Json& source_config,
                            bool deepstack);

}  // namespace q3vl::builder
