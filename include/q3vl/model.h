// q3vl::Model — a loaded q3vl package (the directory `q3vl build` writes), ready to generate.
//
// Loading reads q3vl.json, checks its format version and that every graph and config file
// it needs exists, and creates one ONNX Runtime session per graph (embed, decoder; vision
// on the first image or video unless ModelOptions::preload_vision) on the process-wide
// environment (runtime/ort_env.h), plus the tokenizer, chat template, processor configs
// and generation_config.json defaults.
//
// Thread-safety: a Model is immutable after load; share it (std::shared_ptr<const Model>)
// between any number of threads. Per-request state (KV cache, vision cache) lives in
// q3vl::Chat (chat.h), one per conversation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include "q3vl/generate.h"
#include "q3vl/package.h"

namespace q3vl {

namespace runtime {
struct ModelParts;  // sessions, tokenizer, template, configs (src/runtime/model_parts.h)
}

struct ModelOptions {
  int intra_op_threads = 0;  // threads inside one op; 0 = ONNX Runtime's default (all cores)
  int inter_op_threads = 1;  // 1 = sequential node execution
  // Whether ONNX Runtime's idle worker threads spin (busy-wait) between ops. Spinning
  // wins when the cores are ours: 4B INT4 decode at 2 threads on an idle 2-vCPU machine
  // took 76-79 ms/token with it and 86-101 ms without. It loses badly when other
  // processes want the cores (a spinning worker burns the time slice the working thread
  // needs): at load average ~12 the same decode took 536-633 ms/token with it and
  // 136-152 ms without. Set false on shared or oversubscribed machines, or when several
  // Chats decode at once.
  bool allow_spinning = true;
  // Tokens per prefill call: long prompts run in chunks of this many tokens, bounding the
  // activations (not the KV cache). Must be >= 1.
  std::int64_t prefill_chunk_tokens = 512;
  // Whether Model::load creates the vision session (true) or the first request with an
  // image or video does (false). Lazy keeps a text-only run from paying the tower's
  // memory (the 4B tower's session holds 0.6 GB at int8, 1.6 GB at fp32) and load time;
  // eager moves that cost off the first media request (`q3vl serve` preloads). The
  // vision graph's files are checked at load either way.
  bool preload_vision = false;
  // Non-empty: profile every ONNX Runtime session of the model (`q3vl bench --profile`).
  // Each graph's trace, every node of every run with its time and shapes, is written as
  // "<profile_prefix>.<graph>_<timestamp>.json" (graph = vision, embed, decoder) when the
  // Model is destroyed. Adds a few microseconds per node; for measurement only.
  std::filesystem::path profile_prefix;
};

class Model {
 public:
  // Loads the package in `package_dir`. Throws q3vl::Error: io (directory, q3vl.json, a
  // graph or config file missing: names the file), format / config (malformed manifest),
  // unsupported (manifest format_version newer than this build reads), runtime (ONNX
  // Runtime cannot create a session: names the graph), usage (bad options).
  static std::shared_ptr<const Model> load(const std::filesystem::path& package_dir,
                                           const ModelOptions& options = {});

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::filesystem::path& dir() const;
  const PackageManifest& manifest() const;
  const ModelOptions& options() const;
  // Decoding defaults from the package's generation_config.json (sampling, eos ids as stop
  // token ids). Start from these and override what a request sets.
  const GenerateOptions& default_options() const;
  // Longest sequence (prompt + generated tokens) the model accepts: max_position_embeddings.
  std::int64_t context_length() const;
  // The bytes token `id` adds to generated text (for logprobs' "token" / "bytes"): byte-level
  // BPE, so possibly part of a UTF-8 character; empty for special tokens and ids outside
  // the vocabulary. Valid while the Model lives. Thread-safe; the first call builds a table
  // of every token (~0.1 s for Qwen's 151k).
  std::string_view token_bytes(std::int64_t id) const;

  // Internal parts for the runtime implementation; valid while this Model lives.
  const runtime::ModelParts& parts() const { return *parts_; }

 private:
  explicit Model(std::unique_ptr<runtime::ModelParts> parts);
  std::unique_ptr<runtime::ModelParts> parts_;
};

}  // namespace q3vl
