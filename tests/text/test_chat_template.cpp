// Chat templates rendered byte-identically to HF apply_chat_template
// (tests/goldens/text/chat_goldens.json): 69 conversations in OpenAI shape,
// each parsed by parse_messages_json and rendered with
//  - "instruct": the Qwen3-VL Instruct format. The official file is not
//    committed (it is Qwen's, not ours), so this uses the chat_template.jinja
//    that `q3vl make-checkpoint` writes (src/checkpoint), which must render as
//    the official one; make_text_goldens.py --q3vl checks q3vl's renderer on
//    the official file itself against HF when the goldens are made;
//  - "thinking": q3vl's own Thinking-style template (<think> handling);
//  - "qwen3": the tokenizer_config.json template of the Qwen3 tokenizer, via
//    ChatTemplate::load's fallback;
//  - "features": a template that prints Python/Jinja2 behaviours (floats,
//    tojson options, string methods, loop controls).
// Rendered prompts are also tokenized and compared with HF's ids.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>

#include "golden_files.h"
#include "q3vl/chat_template.h"
#include "q3vl/error.h"
#include "q3vl/messages.h"
#include "q3vl/tokenizer.h"
#include "support/test_paths.h"

namespace q3vl::text {
namespace {

namespace fs = std::filesystem;
using q3vl::testing::text::read_bytes;
using q3vl::testing::text::text_golden_dir;

fs::path instruct_checkpoint() {
  static const fs::path dir = [] {
    const fs::path out = q3vl::testing::work_dir() / "text-instruct-checkpoint";
    fs::remove_all(out);
    const std::string cmd = "'" + q3vl::testing::q3vl_exe().string() + "' make-checkpoint --preset tiny --seed 0 --out '" +
                            out.string() + "' --quiet";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    return out;
  }();
  return dir;
}

const Tokenizer& qwen_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::load(q3vl::testing::tokenizer_dir());
  return tokenizer;
}

std::map<std::string, ChatTemplate> load_templates() {
  std::map<std::string, ChatTemplate> templates;
  const auto special = qwen_tokenizer().special_tokens();
  templates.emplace("instruct", ChatTemplate::load(instruct_checkpoint()));
  templates.emplace("qwen3", ChatTemplate::load(q3vl::testing::tokenizer_dir()));
  for (const char* name : {"thinking", "features"}) {
    const auto file = text_golden_dir() / (std::string(name) + ".chat_template.jinja");
    templates.emplace(name, ChatTemplate::from_source(read_bytes(file), file.filename().string(), special));
  }
  return templates;
}

TEST(ChatTemplate, RendersLikeHuggingFaceOnEveryGoldenConversation) {
  const auto golden = q3vl::testing::text::read_json(text_golden_dir() / "chat_goldens.json");
  const auto templates = load_templates();
  const auto& conversations = golden["conversations"];
  ASSERT_GE(conversations.size(), 50u);
  std::map<std::string, int> per_template;
  for (const auto& c : golden["cases"]) {
    const auto& conversation = conversations[c["conversation"].get<std::size_t>()];
    const std::string name = conversation["name"].get<std::string>();
    const std::string template_name = c["template"].get<std::string>();
    const auto messages = parse_messages_json(conversation["messages"].dump(), name);
    RenderOptions options;
    const auto& o = c["options"];
    options.add_generation_prompt = o["add_generation_prompt"].get<bool>();
    if (o.contains("enable_thinking")) options.enable_thinking = o["enable_thinking"].get<bool>();
    if (o.contains("add_vision_id")) options.add_vision_id = o["add_vision_id"].get<bool>();
    if (!conversation["tools"].is_null()) {
      options.tools_json = golden["tool_sets"][conversation["tools"].get<std::size_t>()].dump();
    }
    const std::string rendered = templates.at(template_name).render(messages, options);
    ASSERT_EQ(rendered, c["text"].get<std::string>()) << template_name << " / " << name << " / " << o.dump();
    ASSERT_EQ(qwen_tokenizer().encode(rendered), c["ids"].get<std::vector<TokenId>>())
        << template_name << " / " << name;
    ++per_template[template_name];
  }
  EXPECT_GE(per_template["instruct"], 138);  // every conversation with and without a generation prompt
  EXPECT_GE(per_template["thinking"], 138);
  EXPECT_GE(per_template["qwen3"], 20);
  EXPECT_GE(per_template["features"], 30);
}

TEST(ChatTemplate, RaiseExceptionNamesTemplateAndLine) {
  const auto golden = q3vl::testing::text::read_json(text_golden_dir() / "chat_goldens.json");
  const auto templates = load_templates();
  ASSERT_FALSE(golden["errors"].empty());
  for (const auto& e : golden["errors"]) {
    const auto messages = parse_messages_json(e["messages"].dump(), "errors");
    try {
      templates.at(e["template"].get<std::string>()).render(messages);
      FAIL() << "rendered a conversation HF rejects";
    } catch (const Error& error) {
      const std::string what = error.what();
      EXPECT_EQ(error.kind(), ErrorKind::format);
      EXPECT_NE(what.find("thinking.chat_template.jinja: line " + std::to_string(e["line"].get<int>()) + ":"),
                std::string::npos)
          << what;
      EXPECT_NE(what.find(e["message"].get<std::string>()), std::string::npos) << what;
    }
  }
}

TEST(ChatTemplate, SyntaxErrorsNameTemplateAndLine) {
  // Jinja2 reports line 3 for this template too (unexpected end of template).
  try {
    ChatTemplate::from_source("hello\n{% if x %}\nunclosed", "broken.jinja");
    FAIL() << "compiled an unclosed if";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find("broken.jinja: line 3: syntax error"), std::string::npos) << e.what();
  }
  try {
    ChatTemplate::from_source("a\nb\n{{ 1 + }}\n", "expr.jinja");
    FAIL() << "compiled a broken expression";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expr.jinja: line 3:"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, BadInputsAreReported) {
  const auto tmpl = ChatTemplate::from_source("{{ messages | length }}", "t.jinja");
  try {
    tmpl.render({});
    FAIL() << "rendered an empty conversation";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
  RenderOptions options;
  options.tools_json = "[{\"type\": ";
  try {
    tmpl.render(parse_messages_json(R"([{"role": "user", "content": "x"}])", "m"), options);
    FAIL() << "accepted malformed tools JSON";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find("tools"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, StrftimeNowUsesLocalTime) {
  const auto tmpl = ChatTemplate::from_source("{{ strftime_now('%Y-%m-%d') }}", "date.jinja");
  auto today = [] {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &local);
    return std::string(buf);
  };
  const std::string before = today();
  const std::string got = tmpl.render(parse_messages_json(R"([{"role": "user", "content": "x"}])", "m"));
  const std::string after = today();
  EXPECT_TRUE(got == before || got == after) << got;
}

// ChatTemplate::load follows transformers' loaders (make_text_goldens.py records
// the experiment): chat_template.json > chat_template.jinja > tokenizer_config.json.
TEST(ChatTemplate, LoadPrecedence) {
  const fs::path dir = q3vl::testing::work_dir() / "text-template-precedence";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto messages = parse_messages_json(R"([{"role": "user", "content": "x"}])", "m");
  try {
    ChatTemplate::load(dir);
    FAIL() << "loaded a template from an empty directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
  }
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "E", "chat_template": "CONFIG {{ eos_token }}"})";
  EXPECT_EQ(ChatTemplate::load(dir).render(messages), "CONFIG E");
  std::ofstream(dir / "chat_template.jinja") << "JINJA {{ eos_token }}\n";
  EXPECT_EQ(ChatTemplate::load(dir).render(messages), "JINJA E");  // one trailing newline dropped, as Jinja2
  std::ofstream(dir / "chat_template.json") << R"({"chat_template": "JSON"})";
  EXPECT_EQ(ChatTemplate::load(dir).render(messages), "JSON");
  fs::remove(dir / "chat_template.json");
  fs::remove(dir / "chat_template.jinja");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
  EXPECT_EQ(ChatTemplate::load(dir).render(messages), "D");
  std::ofstream(dir / "chat_template.json") << R"({"template": "x"})";
  try {
    ChatTemplate::load(dir);
    FAIL() << "accepted chat_template.json without chat_template";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find("chat_template.json: chat_template: expected string, got missing"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace q3vl::text
