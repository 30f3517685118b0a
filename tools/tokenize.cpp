// q3vl tokenize: token ids of a text with a model's tokenizer (HF checkpoint or
// q3vl package directory, or a tokenizer.json file).
//   q3vl tokenize --model DIR (--text T | --file F) [--json]
// Prints the ids separated by spaces, or {"ids":[...]} with --json.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "q3vl/error.h"
#include "q3vl/tokenizer.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

struct TokenizeArgs {
  std::filesystem::path model;
  std::string text;
  std::filesystem::path file;
  bool json = false;
  bool literal_special = false;
  bool replace_invalid = false;
};

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int run_tokenize(const TokenizeArgs& args, bool from_file) {
  const auto tokenizer = text::Tokenizer::load(args.model);
  text::EncodeOptions options;
  options.parse_special_tokens = !args.literal_special;
  options.invalid_utf8 = args.replace_invalid ? text::InvalidUtf8::replace : text::InvalidUtf8::reject;
  const auto ids = tokenizer.encode(from_file ? read_bytes(args.file) : args.text, options);
  std::string out = args.json ? "{\"ids\":[" : "";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += args.json ? "," : " ";
    out += std::to_string(ids[i]);
  }
  out += args.json ? "]}\n" : "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

RunFunction setup_tokenize(CLI::App& command) {
  auto args = std::make_shared<TokenizeArgs>();
  command.add_option("--model", args->model, "Model directory (HF checkpoint or q3vl package) or tokenizer.json")
      ->required();
  auto* text = command.add_option("--text", args->text, "Text to tokenize (UTF-8)");
  auto* file = command.add_option("--file", args->file, "File whose bytes (UTF-8) are tokenized");
  text->excludes(file);
  command.add_flag("--json", args->json, "Print {\"ids\":[...]}");
  command.add_flag("--no-special-tokens", args->literal_special,
                   "Encode special tokens written in the text (\"<|im_start|>\") as plain text");
  command.add_flag("--replace-invalid-utf8", args->replace_invalid,
                   "Replace invalid UTF-8 by U+FFFD instead of failing");
  return [args, text, file] {
    if (text->count() == 0 && file->count() == 0) {
      throw_error(ErrorKind::usage, "", "--text / --file", "exactly one of them", "neither");
    }
    return run_tokenize(*args, file->count() > 0);
  };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("tokenize", "Print the token ids of a text", setup_tokenize);

}  // namespace q3vl::tools
