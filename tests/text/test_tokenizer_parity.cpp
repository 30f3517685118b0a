// Token ids, literal-special ids and decodes against Python `tokenizers` on the
// committed corpus (tests/goldens/text/tokenizer_parity.jsonl), and the defined
// behaviour for invalid UTF-8: rejected at the byte offset Python reports, or
// replaced exactly as bytes.decode("utf-8", errors="replace") does.
#include <gtest/gtest.h>

#include <thread>

#include "golden_files.h"
#include "q3vl/error.h"
#include "q3vl/tokenizer.h"
#include "support/test_paths.h"

namespace q3vl::text {
namespace {

using q3vl::testing::text::read_jsonl;
using q3vl::testing::text::text_golden_dir;

const Tokenizer& qwen_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::load(q3vl::testing::tokenizer_dir());
  return tokenizer;
}

std::vector<TokenId> ids_of(const nlohmann::ordered_json& json) { return json.get<std::vector<TokenId>>(); }

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(TokenizerParity, ValidStringsMatchPythonTokenizers) {
  const auto rows = read_jsonl(text_golden_dir() / "tokenizer_parity.jsonl");
  const auto& tok = qwen_tokenizer();
  EncodeOptions literal;
  literal.parse_special_tokens = false;
  std::size_t valid = 0, with_literal = 0, nfc = 0;
  for (const auto& row : rows) {
    if (!row.contains("s")) continue;
    ++valid;
    const std::string s = row["s"].get<std::string>();
    const auto want = ids_of(row["ids"]);
    const auto got = tok.encode(s);
    ASSERT_EQ(got, want) << "encode(" << nlohmann::json(s).dump() << ")";
    const auto want_literal = row.contains("lit") ? ids_of(row["lit"]) : want;
    with_literal += row.contains("lit");
    ASSERT_EQ(tok.encode(s, literal), want_literal) << "encode literal(" << nlohmann::json(s).dump() << ")";
    const std::string want_decode = row.contains("dec") ? row["dec"].get<std::string>() : s;
    nfc += row.contains("dec");
    ASSERT_EQ(tok.decode(got), want_decode) << "decode of " << nlohmann::json(s).dump();
  }
  // The corpus must stay as broad as the issue asks.
  EXPECT_GE(valid, 10000u);
  EXPECT_GE(with_literal, 100u);  // strings with special tokens written in them
  EXPECT_GE(nfc, 100u);           // strings that decode to their NFC form, not themselves
}

TEST(TokenizerParity, InvalidUtf8IsRejectedAtPythonsOffsetOrReplacedLikePython) {
  const auto rows = read_jsonl(text_golden_dir() / "tokenizer_parity.jsonl");
  const auto& tok = qwen_tokenizer();
  EncodeOptions replace;
  replace.invalid_utf8 = InvalidUtf8::replace;
  std::size_t invalid = 0;
  for (const auto& row : rows) {
    if (!row.contains("hex")) continue;
    ++invalid;
    const std::string bytes = from_hex(row["hex"].get<std::string>());
    const auto bad = row["bad"].get<std::size_t>();
    try {
      tok.encode(bytes);
      FAIL() << "accepted invalid UTF-8 " << row["hex"];
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::format);
      EXPECT_NE(std::string(e.what()).find("at byte offset " + std::to_string(bad)), std::string::npos)
          << e.what() << " (want offset " << bad << ") for " << row["hex"];
    }
    ASSERT_EQ(tok.encode(bytes, replace), ids_of(row["ids"])) << "replace " << row["hex"];
  }
  EXPECT_GE(invalid, 300u);
}

// The header promises concurrent encode/decode on one Tokenizer: two threads
// share it over the same goldens and must both get Python's ids.
TEST(TokenizerParity, ConcurrentEncodeOnOneTokenizer) {
  const auto rows = read_jsonl(text_golden_dir() / "tokenizer_parity.jsonl");
  const auto& tok = qwen_tokenizer();
  std::vector<int> mismatches(2, 0);
  auto work = [&](int t) {
    for (std::size_t i = static_cast<std::size_t>(t); i < 2000 && i < rows.size(); i += 1) {
      if (!rows[i].contains("s")) continue;
      const auto ids = tok.encode(rows[i]["s"].get<std::string>());
      if (ids != ids_of(rows[i]["ids"]) || tok.decode(ids).empty() != rows[i]["ids"].empty()) ++mismatches[t];
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  EXPECT_EQ(mismatches[0], 0);
  EXPECT_EQ(mismatches[1], 0);
}

}  // namespace
}  // namespace q3vl::text
