// Tokenizer lookups and files: values checked by hand against the Qwen3
// tokenizer.json / tokenizer_config.json (and Python: len(tokenizer) == 151669).
#include <gtest/gtest.h>

#include <fstream>

#include "q3vl/error.h"
#include "q3vl/tokenizer.h"
#include "support/test_paths.h"

namespace q3vl::text {
namespace {

TEST(TokenizerApi, VocabularyAndAddedTokens) {
  const auto tok = Tokenizer::load(q3vl::testing::tokenizer_dir());
  EXPECT_EQ(tok.vocab_size(), 151669u);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), std::optional<TokenId>(151643));
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), std::optional<TokenId>(151644));
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), std::optional<TokenId>(151645));
  EXPECT_EQ(tok.token_to_id("<|image_pad|>"), std::optional<TokenId>(151655));
  EXPECT_EQ(tok.token_to_id("<|video_pad|>"), std::optional<TokenId>(151656));
  EXPECT_EQ(tok.token_to_id("Hello"), std::optional<TokenId>(9707));
  EXPECT_EQ(tok.token_to_id("no such token \x01"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(9707), std::optional<std::string>("Hello"));
  EXPECT_EQ(tok.id_to_token(220), std::optional<std::string>("\xC4\xA0"));  // "Ġ", the byte-level space
  EXPECT_EQ(tok.id_to_token(151668), std::optional<std::string>("</think>"));
  EXPECT_EQ(tok.id_to_token(151669), std::nullopt);  // the model's padded rows have no token

  const auto& added = tok.added_tokens();
  ASSERT_EQ(added.size(), 26u);
  EXPECT_EQ(added.front().id, 151643u);
  EXPECT_EQ(added.front().content, "<|endoftext|>");
  EXPECT_TRUE(added.front().special);
  EXPECT_EQ(added.back().id, 151668u);
  EXPECT_EQ(added.back().content, "</think>");
  EXPECT_FALSE(added.back().special);  // <think> tags are added but not special in Qwen3

  const auto& special = tok.special_tokens();
  EXPECT_EQ(special.eos_token, std::optional<std::string>("<|im_end|>"));
  EXPECT_EQ(special.pad_token, std::optional<std::string>("<|endoftext|>"));
  EXPECT_EQ(special.bos_token, std::nullopt);  // null in tokenizer_config.json
  ASSERT_EQ(special.additional_special_tokens.size(), 13u);
  EXPECT_EQ(special.additional_special_tokens[0], "<|im_start|>");
}

TEST(TokenizerApi, SpecialTokenParsingAndSkipping) {
  const auto tok = Tokenizer::load(q3vl::testing::tokenizer_dir() / "tokenizer.json");
  const std::vector<TokenId> hello_im_end = {9707, 151645};
  EXPECT_EQ(tok.encode("Hello<|im_end|>"), hello_im_end);
  EncodeOptions literal;
  literal.parse_special_tokens = false;
  const auto as_text = tok.encode("Hello<|im_end|>", literal);
  EXPECT_GT(as_text.size(), 2u);
  EXPECT_EQ(tok.decode(as_text), "Hello<|im_end|>");
  EXPECT_EQ(tok.decode(hello_im_end), "Hello<|im_end|>");
  EXPECT_EQ(tok.decode(hello_im_end, /*skip_special_tokens=*/true), "Hello");
  // Loaded from the file: the tokenizer_config.json next to it is still read.
  EXPECT_EQ(tok.special_tokens().eos_token, std::optional<std::string>("<|im_end|>"));
  EXPECT_EQ(tok.encode(""), std::vector<TokenId>{});
  EXPECT_EQ(tok.decode(std::vector<TokenId>{}), "");
}

// Generated ids can fall in the model's padded vocabulary rows (151669..151935):
// decode skips ids with no token, as HF does (Python gives 'Hello!' here).
TEST(TokenizerApi, IdsWithoutTokenDecodeToNothingLikeHf) {
  const auto tok = Tokenizer::load(q3vl::testing::tokenizer_dir());
  EXPECT_EQ(tok.decode(std::vector<TokenId>{9707, 151700, 151669, 0}), "Hello!");
}

TEST(TokenizerApi, StreamSurvivesMovingTheTokenizer) {
  auto tok = Tokenizer::load(q3vl::testing::tokenizer_dir());
  auto stream = tok.decode_stream();
  const Tokenizer moved = std::move(tok);
  EXPECT_EQ(stream.step(9707), "Hello");
  EXPECT_EQ(stream.step(0), "!");
  EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerApi, LoadErrorsNameTheFile) {
  const auto dir = q3vl::testing::work_dir() / "text-tokenizer-errors";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  try {
    Tokenizer::load(dir);
    FAIL() << "loaded a directory without tokenizer.json";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "tokenizer.json") << "{\"version\": \"1.0\", \"model\": 42}";
  try {
    Tokenizer::load(dir);
    FAIL() << "loaded a malformed tokenizer.json";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find((dir / "tokenizer.json").string()), std::string::npos) << e.what();
  }
  std::filesystem::copy_file(q3vl::testing::tokenizer_dir() / "tokenizer.json", dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << "{\"eos_token\": 7}";
  try {
    Tokenizer::load(dir);
    FAIL() << "accepted a numeric eos_token";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: eos_token: expected string"), std::string::npos)
        << e.what();
  }
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": {"content": "<|im_end|>", "special": true}})";
  EXPECT_EQ(Tokenizer::load(dir).special_tokens().eos_token, std::optional<std::string>("<|im_end|>"));
}

}  // namespace
}  // namespace q3vl::text
