// Where a model directory keeps its chat template, in transformers 5.23's order.
// Private to src/text.
#pragma once

#include <filesystem>
#include <string>

namespace q3vl::text {

struct TemplateFile {
  std::string source;  // the Jinja text
  std::string name;    // for messages: "<dir>/chat_template.jinja", ".../tokenizer_config.json#chat_template"
};

// Order (checked against transformers 5.23 by experiment, see
// tests/reference/make_text_goldens.py `check_template_precedence`):
//  1. chat_template.json {"chat_template": "..."} — AutoProcessor reads this legacy
//     file in preference to chat_template.jinja (processing_utils.py).
//  2. chat_template.jinja — AutoTokenizer's and AutoProcessor's modern file.
//  3. tokenizer_config.json "chat_template" — AutoTokenizer's fallback: a string,
//     or a list of {"name", "template"} from which "default" is taken.
// Throws q3vl::Error: io when none has a template, format for malformed JSON or
// a "chat_template" of the wrong type.
TemplateFile find_chat_template(const std::filesystem::path& model_dir);

}  // namespace q3vl::text
