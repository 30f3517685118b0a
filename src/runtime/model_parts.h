// What a loaded q3vl::Model holds (include/q3vl/model.h): the three sessions, the text
// front end, the processor configs and the decoder facts the generation loop needs.
// Immutable after Model::load, except that Ort::Session::Run is non-const in the C++ API
// although ONNX Runtime documents concurrent Run() on one session as safe; hence the
// sessions are `mutable`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "q3vl/chat_template.h"
#include "q3vl/config.h"
#include "q3vl/generate.h"
#include "q3vl/model.h"
#include "q3vl/processor.h"
#include "q3vl/tokenizer.h"
#include "runtime/lazy_session.h"
#include "runtime/ort_session.h"
#include "runtime/token_bytes.h"
#include "vision/grid_tables.h"

namespace q3vl::runtime {

struct ModelParts {
  std::filesystem::path dir;
  PackageManifest manifest;
  ModelOptions options;
  ModelConfig config;  // the checkpoint's config.json (from q3vl.json)
  ProcessorConfig processor;
  vision::GridTableParams grid_params;
  GenerateOptions defaults;
  text::Tokenizer tokenizer;
  text::ChatTemplate chat_template;
  // Created on the first image or video (lazy_session.h); not present() when the package
  // has no vision graph.
  mutable LazySession vision;
  mutable OrtSession embed;
  mutable OrtSession decoder;
  mutable LazyTokenBytes token_bytes;  // TokenBytes::of(parts) builds it on first use
};

// Sampling defaults and eos ids from DIR/generation_config.json (HF GenerationConfig keys
// do_sample, temperature, top_k, top_p, min_p, repetition_penalty, eos_token_id,
// max_new_tokens); absent file or key = GenerateOptions' defaults, with `fallback_eos`
// as stop ids. Throws q3vl::Error(config) naming the file and key for a wrong type.
GenerateOptions load_generation_defaults(const std::filesystem::path& dir,
                                         const std::vector<std::int64_t>& fallback_eos);

}  // namespace q3vl::runtime
