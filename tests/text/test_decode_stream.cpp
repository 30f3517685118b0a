// DecodeStream against Python tokenizers' DecodeStream, step by step, plus the
// flush q3vl adds: on every golden sequence the pieces concatenate to the full
// decode and each piece is valid UTF-8 (checked by a validator in this suite).
#include <gtest/gtest.h>

#include "golden_files.h"
#include "q3vl/tokenizer.h"
#include "support/test_paths.h"

namespace q3vl::text {
namespace {

using q3vl::testing::text::is_valid_utf8;

TEST(DecodeStream, MatchesPythonStepByStepAndFlushCompletesTheFullDecode) {
  const auto tok = Tokenizer::load(q3vl::testing::tokenizer_dir());
  const auto rows = q3vl::testing::text::read_jsonl(q3vl::testing::text::text_golden_dir() / "decode_stream.jsonl");
  std::size_t held_back_at_end = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const auto ids = row["ids"].get<std::vector<TokenId>>();
    const std::string full = row["full"].get<std::string>();
    auto stream = tok.decode_stream(row["skip"].get<bool>());
    std::string streamed;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::string piece = stream.step(ids[i]);
      const auto& want = row["steps"][i];
      ASSERT_EQ(piece, want.is_null() ? std::string() : want.get<std::string>()) << "row " << r << " step " << i;
      ASSERT_TRUE(is_valid_utf8(piece)) << "row " << r << " step " << i;
      streamed += piece;
    }
    const std::string rest = stream.flush();
    ASSERT_TRUE(is_valid_utf8(rest)) << "row " << r;
    held_back_at_end += !rest.empty();
    ASSERT_EQ(streamed + rest, full) << "row " << r;
    ASSERT_EQ(full, tok.decode(ids, row["skip"].get<bool>())) << "row " << r;
    EXPECT_EQ(stream.flush(), "") << "a second flush emits nothing, row " << r;
  }
  EXPECT_EQ(rows.size(), 700u);
  // Sequences cut inside a character or ending in random byte tokens must exist,
  // or the flush path is untested.
  EXPECT_GE(held_back_at_end, 20u);
}

TEST(DecodeStream, SplitCharacterIsHeldBackUntilComplete) {
  const auto tok = Tokenizer::load(q3vl::testing::tokenizer_dir());
  // "世" is E4 B8 96; single-byte tokens for each byte exist in a byte-level BPE.
  std::vector<TokenId> bytes_ids;
  for (const char* byte_token : {"a", "ä", "¸", "ĸ"}) {  // byte-level spellings of 61, E4, B8, 96
    const auto id = tok.token_to_id(byte_token);
    ASSERT_TRUE(id.has_value()) << byte_token;
    bytes_ids.push_back(*id);
  }
  ASSERT_EQ(tok.decode(bytes_ids), "a世");
  auto stream = tok.decode_stream();
  EXPECT_EQ(stream.step(bytes_ids[0]), "a");
  EXPECT_EQ(stream.step(bytes_ids[1]), "");
  EXPECT_EQ(stream.step(bytes_ids[2]), "");
  EXPECT_EQ(stream.step(bytes_ids[3]), "世");
  // Cut after two of three bytes: the flush shows the incomplete character as
  // U+FFFD, as a full decode does.
  auto cut = tok.decode_stream();
  EXPECT_EQ(cut.step(bytes_ids[1]), "");
  EXPECT_EQ(cut.step(bytes_ids[2]), "");
  EXPECT_EQ(cut.flush(), tok.decode(std::vector<TokenId>{bytes_ids[1], bytes_ids[2]}));
  EXPECT_EQ(cut.flush(), "");
}

}  // namespace
}  // namespace q3vl::text
