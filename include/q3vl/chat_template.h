// q3vl::text::ChatTemplate — the model's own Jinja chat template, rendered to
// exactly the text Hugging Face `apply_chat_template(..., tokenize=False)` gives.
//
// Rendering runs in minijinja (src/text/rust) configured as transformers
// configures Jinja2: trim_blocks, lstrip_blocks, no autoescape, loop controls,
// Python `json.dumps` as `tojson`, `raise_exception`, `strftime_now`, Python
// string methods, Python printing of floats/True/None. Messages are presented
// as transformers presents them (None fields dropped, reasoning under both
// `reasoning_content` and `thinking`, media parts as {"type": "image"|"video"}).
//
// Thread-safety: a ChatTemplate is immutable; render() may run concurrently.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "q3vl/messages.h"
#include "q3vl/tokenizer.h"

namespace q3vl::text {

struct RenderOptions {
  // Append the assistant header. transformers' default is false; q3vl's is
  // true because generation always wants it (`q3vl template --no-generation-prompt`).
  bool add_generation_prompt = true;
  // Tool definitions: a JSON array text (OpenAI `tools`), passed as `tools`.
  // nullopt renders `tools` as None, as HF does without tools.
  std::optional<std::string> tools_json;
  // `enable_thinking` (Qwen Thinking-style templates); nullopt leaves it undefined.
  std::optional<bool> enable_thinking;
  // `add_vision_id` ("Picture 1: ..."); nullopt leaves it undefined (= off).
  std::optional<bool> add_vision_id;
  // More template variables: (name, JSON value text), like extra kwargs to
  // apply_chat_template; they override the special tokens, as in HF.
  std::vector<std::pair<std::string, std::string>> extra_variables_json;
};

class ChatTemplate {
 public:
  // The template of a model directory (HF checkpoint or q3vl package), found in
  // transformers 5.23's order (processing_utils.py / tokenization_utils_base.py
  // `from_pretrained`): chat_template.json ("chat_template" key; the processor's
  // legacy file, which the processor loads in preference to the .jinja),
  // then chat_template.jinja, then tokenizer_config.json's "chat_template"
  // (string, or a list of {"name", "template"} whose "default" is used).
  // Special tokens come from tokenizer_config.json if present.
  // Throws q3vl::Error: io (no template in any of those files), format
  // (malformed JSON, template syntax error with the file and line).
  static ChatTemplate load(const std::filesystem::path& model_dir);

  // A template from text. `name` is used in error messages (e.g. the file name).
  // Throws q3vl::Error(format) on a syntax error ("<name>: line N: ...").
  static ChatTemplate from_source(const std::string& source, const std::string& name,
                                  SpecialTokens special_tokens = {});

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // The prompt text, byte-identical to HF apply_chat_template(messages,
  // tools=..., add_generation_prompt=..., tokenize=False, **extra).
  // Throws q3vl::Error(format) "<name>: line N: <reason>" when rendering fails,
  // including the template's own raise_exception("...") ("raise_exception: ...");
  // (format) for malformed tools_json / extra_variables_json; (usage) for an
  // empty conversation (HF refuses it too).
  std::string render(const std::vector<Message>& messages, const RenderOptions& options = {}) const;

  const std::string& name() const;
  const std::string& source() const;
  const SpecialTokens& special_tokens() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace q3vl::text
