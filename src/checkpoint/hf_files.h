// The small files of a Hugging Face Qwen3-VL checkpoint directory besides the
// weights and config.json: generation and processor configs, the chat template
// and the tokenizer files. Values are Qwen3-VL Instruct's (docs/reference/qwen3vl.md
// §2, §3, §11 and docs/reference/hf-reference-facts.md); file names and key names
// are the Hub's (what transformers 4.57 wrote and 5.x still reads).
#pragma once

#include <filesystem>
#include <string_view>

#include "io/json_file.h"

namespace q3vl::checkpoint {

// chat_template.jinja: q3vl's own template for the Qwen3-VL Instruct chat format
// (see chat_template.cpp). Static storage; valid for the program's lifetime.
std::string_view qwen3vl_chat_template();

// generation_config.json of the Instruct models.
io::Json qwen3vl_generation_config();

// preprocessor_config.json (images: Qwen2VLImageProcessorFast with Qwen3-VL values).
io::Json qwen3vl_preprocessor_config();

// video_preprocessor_config.json (Qwen3VLVideoProcessor).
io::Json qwen3vl_video_preprocessor_config();

// Copies tokenizer.json from `source_dir` to `out_dir` byte for byte, and writes
// tokenizer_config.json from the source's with its "chat_template" key removed:
// the Qwen3 tokenizer package carries the text-only Qwen3 template, which would
// otherwise take precedence over chat_template.jinja in some loaders.
// Throws q3vl::Error(io) naming the missing/unreadable file (and that
// scripts/setup.sh fetches it), q3vl::Error(format) for a malformed config.
void write_tokenizer_files(const std::filesystem::path& source_dir,
                           const std::filesystem::path& out_dir);

// Where setup.sh puts the real Qwen3 tokenizer (fixed at build time).
std::filesystem::path default_tokenizer_dir();

}  // namespace q3vl::checkpoint
