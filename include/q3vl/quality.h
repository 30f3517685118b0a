// q3vl::eval_kl — quality of a quantized package against its FP32 reference, measured
// on the logits: mean KL divergence KL(P_ref || P_test) over the full vocabulary (double
// precision) and top-1 agreement, over a fixed teacher-forced set.
//
// Text: the tokenized text file is cut into chunks of `context` tokens; each chunk starts
// from an empty KV cache, its first half is context only, and the logits at positions
// first = context/2 ... context-2 (each predicting the next token of the text) are scored:
// context - 1 - first tokens per chunk, as llama.cpp's `llama-perplexity --kl-divergence`
// does, so the two tools' figures are comparable. The text is teacher-forced one decode
// step per token after a prefill of the first half (the decoder returns last-position
// logits only), through the runtime's own prefill and DecoderRunner.
// Images: for each size, a synthetic image (bench/synthetic_image.h) in the prompt
// "Describe this image in detail." is prefilled through the product's vision path, and
// the first `answer_tokens` tokens of the text file are teacher-forced as the answer:
// answer_tokens scored positions per image (the prompt's last position included).
//
// Both packages must share the tokenizer and vocabulary (q3vl builds of one checkpoint).
// Thread-safety: run_kl_eval uses the calling thread and the models' ORT pools.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "q3vl/bench.h"

namespace q3vl {

struct KlOptions {
  std::filesystem::path text_file;
  std::int64_t context = 512;        // tokens per text chunk, >= 4
  std::int64_t max_chunks = 0;       // 0 = every whole chunk of the text
  std::vector<BenchImageSize> images = {{448, 448}, {1024, 768}};
  std::int64_t answer_tokens = 64;   // teacher-forced answer tokens per image, >= 1
};

// Over the scored positions of one part of the set.
struct KlStats {
  std::int64_t tokens = 0;     // scored positions
  double mean_kl = 0.0;        // nats
  double kl_stderr = 0.0;      // standard error of mean_kl (sd / sqrt(n))
  double max_kl = 0.0;
  double p99_kl = 0.0;         // 99th percentile (nearest rank)
  double top1_agreement = 0.0; // fraction of positions whose argmax ids are equal
};

struct KlReport {
  BenchMachine machine;
  BenchPackage reference, test;  // linear_weight_bytes / linear_weights = bytes per weight
  std::int64_t context = 0, chunks = 0, text_tokens = 0;  // text_tokens: the whole tokenized file
  KlStats text, images, all;
};

// Loads both packages with `model_options` and scores `test` against `reference`.
// Throws q3vl::Error: usage (bad options: names them), io (text file), limit (text
// shorter than one chunk, a chunk longer than the context), config (the packages'
// vocab sizes differ), plus what Model::load and the runtime throw.
KlReport run_kl_eval(const std::filesystem::path& reference_dir, const std::filesystem::path& test_dir,
                     const ModelOptions& model_options, const KlOptions& options,
                     const BenchProgress& progress = {});

std::string format_kl_markdown(const KlReport& report);
std::string format_kl_json(const KlReport& report);

}  // namespace q3vl
