// The Qwen3-VL chat template (the one make-checkpoint writes) rendered over a fuzzed
// conversation: roles, strings with template syntax and invalid UTF-8, image and
// video parts, tool calls, reasoning, and the render switches.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "checkpoint/hf_files.h"
#include "harness.h"
#include "q3vl/chat_template.h"

namespace {

const q3vl::text::ChatTemplate& qwen_template() {
  static const auto t = q3vl::text::ChatTemplate::from_source(
      std::string(q3vl::checkpoint::qwen3vl_chat_template()), "chat_template.jinja");
  return t;
}

q3vl::text::Message fuzzed_message(FuzzedDataProvider& in) {
  static const char* kRoles[] = {"system", "user", "assistant", "tool", "developer"};
  q3vl::text::Message m;
  m.role = kRoles[in.ConsumeIntegralInRange<int>(0, 4)];
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      break;  // no content
    case 1:
      m.content = in.ConsumeRandomLengthString(256);
      break;
    default: {
      std::vector<q3vl::text::ContentPart> parts(in.ConsumeIntegralInRange<std::size_t>(0, 4));
      for (auto& p : parts) {
        p.type = static_cast<q3vl::text::ContentPart::Type>(in.ConsumeIntegralInRange<int>(0, 2));
        if (p.type == q3vl::text::ContentPart::Type::text) {
          p.text = in.ConsumeRandomLengthString(128);
        } else {
          p.media.location = in.ConsumeRandomLengthString(32);
        }
      }
      m.content = std::move(parts);
    }
  }
  if (in.ConsumeBool()) m.reasoning_content = in.ConsumeRandomLengthString(64);
  if (in.ConsumeBool()) {
    q3vl::text::ToolCall call;
    call.name = in.ConsumeRandomLengthString(16);
    call.arguments = in.ConsumeRandomLengthString(64);
    call.arguments_is_string = in.ConsumeBool();
    m.tool_calls.push_back(call);
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  q3vl::text::RenderOptions options;
  options.add_generation_prompt = in.ConsumeBool();
  if (in.ConsumeBool()) options.enable_thinking = in.ConsumeBool();
  if (in.ConsumeBool()) options.add_vision_id = in.ConsumeBool();
  if (in.ConsumeBool()) options.tools_json = in.ConsumeRandomLengthString(128);
  std::vector<q3vl::text::Message> messages(in.ConsumeIntegralInRange<std::size_t>(0, 6));
  for (auto& m : messages) m = fuzzed_message(in);
  q3vl::fuzz::expect_clean([&] {
    const std::string prompt = qwen_template().render(messages, options);
    // The template copies a user's plain-string content verbatim.
    for (const auto& m : messages) {
      if (m.role != "user") continue;
      if (const auto* s = std::get_if<std::string>(&m.content)) {
        q3vl::fuzz::require(prompt.find(*s) != std::string::npos, "user text appears in the prompt");
      }
    }
  });
  return 0;
}
