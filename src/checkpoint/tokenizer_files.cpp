#include <system_error>

#include "checkpoint/hf_files.h"
#include "q3vl/error.h"

namespace q3vl::checkpoint {
namespace {

std::filesystem::path require_file(const std::filesystem::path& dir, const char* name) {
  const auto path = dir / name;
  if (!std::filesystem::is_regular_file(path)) {
    throw_error(ErrorKind::io, path.string(),
                "Qwen3 tokenizer file not found (scripts/setup.sh fetches it; or pass "
                "--tokenizer-dir)");
  }
  return path;
}

}  // namespace

std::filesystem::path default_tokenizer_dir() { return Q3VL_DEFAULT_TOKENIZER_DIR; }

void write_tokenizer_files(const std::filesystem::path& source_dir,
                           const std::filesystem::path& out_dir) {
  const auto tokenizer = require_file(source_dir, "tokenizer.json");
  const auto tokenizer_config = require_file(source_dir, "tokenizer_config.json");

  std::error_code error;
  std::filesystem::copy_file(tokenizer, out_dir / "tokenizer.json", error);
  if (error) {
    throw_error(ErrorKind::io, (out_dir / "tokenizer.json").string(),
                "cannot copy from " + tokenizer.string() + ": " + error.message());
  }

  io::Json config = io::read_json_file(tokenizer_config);
  config.erase("chat_template");
  io::write_json_file(out_dir / "tokenizer_config.json", config);
}

}  // namespace q3vl::checkpoint
