// q3vl template: renders a conversation with a model's own chat template,
// exactly as HF apply_chat_template(..., tokenize=False) does.
//   q3vl template --model DIR --messages F.json [--no-generation-prompt] [--tools F.json]
// F.json is an OpenAI-shape message array, or an object with "messages" (and
// "tools"). The prompt is printed as is, with no newline added.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "q3vl/chat_template.h"
#include "q3vl/error.h"
#include "q3vl/messages.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

struct TemplateArgs {
  std::filesystem::path model;
  std::filesystem::path messages;
  std::filesystem::path tools;
  bool no_generation_prompt = false;
  bool add_vision_id = false;
  std::string enable_thinking;
};

int run_template(const TemplateArgs& args) {
  const auto chat_template = text::ChatTemplate::load(args.model);
  auto request = text::read_chat_request_file(args.messages);
  text::RenderOptions options;
  options.add_generation_prompt = !args.no_generation_prompt;
  options.tools_json = request.tools_json;
  if (!args.tools.empty()) options.tools_json = text::read_tools_file(args.tools);
  if (args.add_vision_id) options.add_vision_id = true;
  if (!args.enable_thinking.empty()) options.enable_thinking = args.enable_thinking == "true";
  const std::string prompt = chat_template.render(request.messages, options);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return 0;
}

RunFunction setup_template(CLI::App& command) {
  auto args = std::make_shared<TemplateArgs>();
  command.add_option("--model", args->model, "Model directory (HF checkpoint or q3vl package)")->required();
  command.add_option("--messages", args->messages, "Conversation JSON (OpenAI chat shape)")->required();
  command.add_option("--tools", args->tools, "Tool definitions JSON array (overrides the file's \"tools\")");
  command.add_flag("--no-generation-prompt", args->no_generation_prompt, "Do not append the assistant header");
  command.add_flag("--add-vision-id", args->add_vision_id, "Label media \"Picture N: \" / \"Video N: \"");
  command.add_option("--enable-thinking", args->enable_thinking, "Pass enable_thinking to the template")
      ->check(CLI::IsMember({"true", "false"}));
  return [args] { return run_template(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("template", "Render a conversation with the model's chat template", setup_template);

}  // namespace q3vl::tools
