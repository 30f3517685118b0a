// The variables a chat template sees, built the way transformers builds them
// in apply_chat_template / render_jinja_template (utils/chat_template_utils.py):
//   messages             each Message as a dict with None-valued keys dropped;
//                        reasoning copied to "thinking" and "reasoning_content"
//                        (`_alias_reasoning_fields`); image/video parts as
//                        {"type": "image", "image": url} / {"type": "video", "video": url}
//                        (the shape HF's processor documents; the official Qwen3-VL
//                        template does not recognise video_url parts)
//   tools, documents     the tool list or None; always None (q3vl has no RAG documents)
//   add_generation_prompt
//   special tokens       eos_token, pad_token, ... (only those that are set)
//   extra variables      enable_thinking, add_vision_id, caller-given kwargs
// Private to src/text.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "q3vl/chat_template.h"

namespace q3vl::text {

// One message as the template sees it (key order kept for tojson).
nlohmann::ordered_json message_to_template_json(const Message& message);

// The full variable set, serialized for the Rust renderer. Throws
// q3vl::Error(format) if tools_json or an extra variable is not valid JSON.
std::string build_template_context(const std::vector<Message>& messages, const RenderOptions& options,
                                   const SpecialTokens& special_tokens);

}  // namespace q3vl::text
