// `q3vl tokenize` and `q3vl template` end to end on golden inputs.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "golden_files.h"
#include "support/test_paths.h"

namespace q3vl::text {
namespace {

namespace fs = std::filesystem;

struct Run {
  int status;
  std::string out;
};

Run run(const std::string& args) {
  const std::string cmd = "'" + q3vl::testing::q3vl_exe().string() + "' " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed");
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  return {pclose(pipe), out};
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(Cli, TokenizeMatchesGoldenIds) {
  const auto rows = q3vl::testing::text::read_jsonl(q3vl::testing::text::text_golden_dir() / "tokenizer_parity.jsonl");
  const fs::path file = q3vl::testing::work_dir() / "text-cli-input.txt";
  // A string with special tokens, CJK and newlines, passed as a file (bytes as is).
  for (const auto& row : rows) {
    if (!row.contains("s") || !row.contains("lit")) continue;
    const std::string s = row["s"].get<std::string>();
    if (s.find('\n') == std::string::npos) continue;
    std::ofstream(file, std::ios::binary) << s;
    const auto r = run("tokenize --model " + quoted(q3vl::testing::tokenizer_dir()) + " --file " + quoted(file) + " --json");
    ASSERT_EQ(r.status, 0) << r.out;
    nlohmann::json want;
    want["ids"] = row["ids"];
    EXPECT_EQ(r.out, want.dump() + "\n");
    const auto literal = run("tokenize --model " + quoted(q3vl::testing::tokenizer_dir()) + " --file " + quoted(file) +
                             " --json --no-special-tokens");
    want["ids"] = row["lit"];
    EXPECT_EQ(literal.out, want.dump() + "\n");
    break;
  }
  const auto plain = run("tokenize --model " + quoted(q3vl::testing::tokenizer_dir()) + " --text 'Hello<|im_end|>'");
  EXPECT_EQ(plain.out, "9707 151645\n");
  std::ofstream(file, std::ios::binary) << "ok\xff";
  const auto bad = run("tokenize --model " + quoted(q3vl::testing::tokenizer_dir()) + " --file " + quoted(file));
  EXPECT_NE(bad.status, 0);
  EXPECT_EQ(bad.out, "q3vl tokenize: text: encode: text is not valid UTF-8: invalid byte 0xff at byte offset 2\n");
  const auto none = run("tokenize --model " + quoted(q3vl::testing::tokenizer_dir()));
  EXPECT_NE(none.status, 0);
}

TEST(Cli, TemplatePrintsThePromptExactly) {
  const auto golden = q3vl::testing::text::read_json(q3vl::testing::text::text_golden_dir() / "chat_goldens.json");
  // Conversations with tools, images and videos through the Qwen3 tokenizer
  // config's template are out of its scope; use "thinking" via a model dir.
  const fs::path model = q3vl::testing::work_dir() / "text-cli-model";
  fs::remove_all(model);
  fs::create_directories(model);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(q3vl::testing::tokenizer_dir() / f, model / f);
  }
  fs::copy_file(q3vl::testing::text::text_golden_dir() / "thinking.chat_template.jinja", model / "chat_template.jinja");
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    if (c["template"] != "thinking" || c["options"].contains("enable_thinking")) continue;
    const auto& conversation = golden["conversations"][c["conversation"].get<std::size_t>()];
    nlohmann::ordered_json request;
    request["messages"] = conversation["messages"];
    const fs::path messages = q3vl::testing::work_dir() / "text-cli-messages.json";
    const fs::path tools = q3vl::testing::work_dir() / "text-cli-tools.json";
    std::ofstream(messages) << request.dump();
    std::string args = "template --model " + quoted(model) + " --messages " + quoted(messages);
    if (!conversation["tools"].is_null()) {
      std::ofstream(tools) << golden["tool_sets"][conversation["tools"].get<std::size_t>()].dump();
      args += " --tools " + quoted(tools);
    }
    if (!c["options"]["add_generation_prompt"].get<bool>()) args += " --no-generation-prompt";
    if (c["options"].contains("add_vision_id")) args += " --add-vision-id";
    const auto r = run(args);
    ASSERT_EQ(r.status, 0) << r.out;
    ASSERT_EQ(r.out, c["text"].get<std::string>()) << conversation["name"];
    ++checked;
  }
  EXPECT_GE(checked, 69);
}

}  // namespace
}  // namespace q3vl::text
