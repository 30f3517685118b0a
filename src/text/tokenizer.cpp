// Tokenizer: the C++ face of the Rust `tokenizers` handle (rust/src/tokenizer.rs).
#include "q3vl/tokenizer.h"

#include <nlohmann/json.hpp>

#include "q3vl/error.h"
#include "text/rust_call.h"
#include "text/tokenizer_impl.h"

namespace q3vl::text {

namespace {

std::vector<AddedToken> read_added_tokens(const TextTokenizer* handle, const std::string& file) {
  Q3vlTextBytes out{};
  Q3vlTextError err{};
  rust::check(q3vl_tokenizer_added_tokens(handle, &out, &err), err, {file, "added_tokens"});
  const auto list = nlohmann::json::parse(rust::take_string(out));
  std::vector<AddedToken> tokens;
  tokens.reserve(list.size());
  for (const auto& entry : list) {
    tokens.push_back({entry.at("id").get<TokenId>(), entry.at("content").get<std::string>(),
                      entry.at("special").get<bool>()});
  }
  return tokens;
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::error_code ec;
  const bool is_dir = std::filesystem::is_directory(path, ec);
  const std::filesystem::path json = is_dir ? path / "tokenizer.json" : path;
  if (!std::filesystem::is_regular_file(json, ec)) {
    throw_error(ErrorKind::io, json.string(), is_dir ? "no tokenizer.json in this directory" : "no such file");
  }
  auto impl = std::make_unique<Impl>();
  impl->file = json;
  const std::string file = json.string();
  TextTokenizer* raw = nullptr;
  Q3vlTextError err{};
  rust::check(q3vl_tokenizer_load(rust::bytes_of(file), file.size(), &raw, &err), err, {file, ""});
  impl->handle.reset(raw);
  impl->added_tokens = read_added_tokens(raw, file);
  const auto config = json.parent_path() / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config, ec)) impl->special_tokens = load_special_tokens(config);
  return Tokenizer(std::move(impl));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  Q3vlTextIds out{};
  Q3vlTextError err{};
  const bool lossy = options.invalid_utf8 == InvalidUtf8::replace;
  rust::check(q3vl_tokenizer_encode(impl_->handle.get(), rust::bytes_of(text), text.size(),
                                    options.parse_special_tokens, options.add_special_tokens, lossy, &out, &err),
              err, {"text", "encode"});
  return rust::take_ids(out);
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  Q3vlTextBytes out{};
  Q3vlTextError err{};
  rust::check(q3vl_tokenizer_decode(impl_->handle.get(), ids.data(), ids.size(), skip_special_tokens, &out, &err),
              err, {impl_->file.string(), "decode"});
  return rust::take_string(out);
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  Q3vlTextBytes out{};
  if (q3vl_tokenizer_id_to_token(impl_->handle.get(), id, &out) != Q3VL_TEXT_OK) return std::nullopt;
  return rust::take_string(out);
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  TokenId id = 0;
  if (q3vl_tokenizer_token_to_id(impl_->handle.get(), rust::bytes_of(token), token.size(), &id) != Q3VL_TEXT_OK) {
    return std::nullopt;
  }
  return id;
}

std::size_t Tokenizer::vocab_size() const { return q3vl_tokenizer_vocab_size(impl_->handle.get()); }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added_tokens; }
const SpecialTokens& Tokenizer::special_tokens() const { return impl_->special_tokens; }
const std::filesystem::path& Tokenizer::file() const { return impl_->file; }

DecodeStream Tokenizer::decode_stream(bool skip_special_tokens) const {
  return DecodeStream(impl_.get(), skip_special_tokens);
}

}  // namespace q3vl::text
