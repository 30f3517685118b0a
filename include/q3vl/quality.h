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
// A package built with `--all-logits` (manifest logits_mode "all") scores each text chunk
// in one call instead: the first context - 1 tokens prefilled, and its logits rows first ...
// context - 2 kept: the same positions and the same math, one prefill instead of context/2
// decode steps (what makes an FP32 4B reference affordable).
//
// The reference side can be computed once and reused (llama-perplexity's
// --kl-divergence-base): compute_kl_reference() holds the reference's logits at every
// scored position, save_kl_reference() / load_kl_reference() keep them in a file, and
// score_kl() compares a test package against them. Only one model is loaded at a time.
//
// Both packages must share the tokenizer and vocabulary (q3vl builds of one checkpoint).
// Thread-safety: these functions use the calling thread and the models' ORT pools.
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

// The reference package's logits at every scored position, with what they were computed
// on, so that a test run can check it scores the same set.
struct KlReference {
  BenchPackage package;                  // the reference package (describe_package)
  std::int64_t context = 0, chunks = 0;  // chunks actually scored
  std::int64_t text_tokens = 0;          // the whole tokenized text file
  std::int64_t answer_tokens = 0;
  std::int64_t vocab_size = 0;
  std::vector<BenchImageSize> images;    // image prompts scored (none when the reference has no vision)
  std::uint64_t text_fingerprint = 0;    // FNV-1a of the scored chunks' token ids
  std::uint64_t fingerprint = 0;         // the same continued over each image prompt's ids
  std::int64_t text_positions = 0;       // scored text positions; image positions follow them
  std::vector<float> logits;             // [positions, vocab_size]

  std::int64_t positions() const { return vocab_size > 0 ? static_cast<std::int64_t>(logits.size()) / vocab_size : 0; }
};

// Loads the reference package and records its logits. Throws as run_kl_eval does.
KlReference compute_kl_reference(const std::filesystem::path& reference_dir, const ModelOptions& model_options,
                                 const KlOptions& options, const BenchProgress& progress = {});

// Scores `test_dir` against `reference`. `options` must describe the same set (context,
// chunks, answer tokens, image sizes) and the text must tokenize to the same prompts:
// otherwise q3vl::Error(usage) names the option (or "text") and the reference's value.
// Image prompts are scored only when both sides have them; empty options.images scores
// the text set alone.
KlReport score_kl(const KlReference& reference, const std::filesystem::path& test_dir,
                  const ModelOptions& model_options, const KlOptions& options, const BenchProgress& progress = {});

// The file: a line "q3vl-kl-reference 1", a line of JSON (the fields above but logits),
// then the logits as little-endian float32. Written to "<file>.tmp-<pid>" and renamed into
// place, so an interrupted save leaves no partial file at `file`. Throws q3vl::Error(io).
void save_kl_reference(const KlReference& reference, const std::filesystem::path& file);
// Throws q3vl::Error(io) naming the file when it cannot be read, and q3vl::Error(config)
// naming the file and field when it is not a reference file, a field is missing or out
// of range, or its size does not match its header (checked before the logits are read).
KlReference load_kl_reference(const std::filesystem::path& file);

// compute_kl_reference + score_kl: loads both packages in turn and scores `test` against `reference`.
// Throws q3vl::Error: usage (bad options: names them), io (text file), limit (text
// shorter than one chunk, a chunk longer than the context), config (the packages'
// vocab sizes differ), plus what Model::load and the runtime throw.
KlReport run_kl_eval(const std::filesystem::path& reference_dir, const std::filesystem::path& test_dir,
                     const ModelOptions& model_options, const KlOptions& options,
                     const BenchProgress& progress = {});

std::string format_kl_markdown(const KlReport& report);
std::string format_kl_json(const KlReport& report);

}  // namespace q3vl
