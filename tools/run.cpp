// q3vl run: one generation from a package, streamed to stdout.
//   q3vl run --model PKG [--image F]... [--video F] (--prompt TEXT | --messages F.json)
//            [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
//            [--min-p P] [--repetition-penalty R] [--presence-penalty P]
//            [--frequency-penalty F] [--json-object] [--top-logprobs N]
//            [--max-pixels N] [--json] [--stats] [--threads N] [--no-spin]
// Unset sampling flags keep the package's generation_config.json values; --temperature 0
// is greedy. --json prints one object {"text", "token_ids", "finish_reason", "usage",
// "timings"} instead of streaming (with --top-logprobs N also "logprobs": per generated
// token {"logprob", "top": [{"token_id", "logprob"}, ...]}, GenerateOptions::top_logprobs);
// --stats prints usage and timings to stderr.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <optional>

#include "q3vl/chat.h"
#include "q3vl/error.h"
#include "q3vl/messages.h"
#include "q3vl/model.h"
#include "generation_flags.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

struct RunArgs {
  std::filesystem::path model;
  std::vector<std::string> images;
  std::vector<std::string> videos;
  std::optional<std::string> prompt;
  std::optional<std::filesystem::path> messages;
  GenerationFlags generation;
  std::optional<int> top_logprobs;
  bool json = false;
  bool stats = false;
};

text::ContentPart media_part(text::ContentPart::Type type, const std::string& path) {
  text::ContentPart part;
  part.type = type;
  part.media.kind = text::MediaSource::Kind::path;
  part.media.location = path;
  return part;
}

std::vector<text::Message> conversation_of(const RunArgs& args, std::optional<std::string>& tools_json) {
  if (args.messages) {
    if (!args.images.empty() || !args.videos.empty()) {
      throw_error(ErrorKind::usage, "", "--image / --video", "media inside the --messages file", "both");
    }
    text::ChatRequest request = text::read_chat_request_file(*args.messages);
    tools_json = request.tools_json;
    return request.messages;
  }
  // HF's convention for a single user turn: media first, then the text.
  std::vector<text::ContentPart> parts;
  for (const auto& image : args.images) parts.push_back(media_part(text::ContentPart::Type::image, image));
  for (const auto& video : args.videos) parts.push_back(media_part(text::ContentPart::Type::video, video));
  text::ContentPart prompt;
  prompt.text = *args.prompt;
  parts.push_back(prompt);
  text::Message user;
  user.role = "user";
  user.content = std::move(parts);
  return {user};
}

nlohmann::ordered_json result_json(const GenerateResult& r) {
  nlohmann::ordered_json out;
  out["text"] = r.text;
  out["token_ids"] = r.token_ids;
  out["finish_reason"] = to_string(r.finish_reason);
  out["usage"] = {{"prompt_tokens", r.usage.prompt_tokens},
                  {"completion_tokens", r.usage.completion_tokens},
                  {"total_tokens", r.usage.prompt_tokens + r.usage.completion_tokens},
                  {"cached_tokens", r.usage.cached_tokens},
                  {"image_tokens", r.usage.image_tokens},
                  {"video_tokens", r.usage.video_tokens}};
  if (!r.logprobs.empty()) {
    auto& list = out["logprobs"] = nlohmann::ordered_json::array();
    for (const TokenLogprobs& token : r.logprobs) {
      auto top = nlohmann::ordered_json::array();
      for (const TokenLogprob& alt : token.top) top.push_back({{"token_id", alt.token_id}, {"logprob", alt.logprob}});
      list.push_back({{"logprob", token.logprob}, {"top", std::move(top)}});
    }
  }
  const Timings& t = r.timings;
  out["timings"] = {{"vision_ms", t.vision_ms},         {"prefill_ms", t.prefill_ms},
                    {"prefill_tokens_per_s", t.prefill_tokens_per_s}, {"decode_ms", t.decode_ms},
                    {"decode_tokens_per_s", t.decode_tokens_per_s},   {"ttft_ms", t.ttft_ms},
                    {"total_ms", t.total_ms}};
  return out;
}

int run(const RunArgs& args) {
  if (args.prompt.has_value() == args.messages.has_value()) {
    throw_error(ErrorKind::usage, "", "--prompt / --messages", "exactly one of them",
                args.prompt ? "both" : "neither");
  }
  const auto model = Model::load(args.model, args.generation.model_options());
  GenerateOptions options = model->default_options();
  std::vector<text::Message> conversation = conversation_of(args, options.tools_json);
  args.generation.apply(options);
  if (args.top_logprobs) {
    if (!args.json) throw_error(ErrorKind::usage, "", "--top-logprobs", "with --json", "without it");
    options.top_logprobs = *args.top_logprobs;
  }
  StreamCallback stream;
  if (!args.json) {
    stream = [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  const GenerateResult result = generate(model, conversation, options, stream);
  if (args.json) {
    std::printf("%s\n", result_json(result).dump().c_str());
  } else {
    std::printf("\n");
  }
  if (args.stats) {
    const nlohmann::ordered_json j = result_json(result);
    std::fprintf(stderr, "finish_reason: %s\nusage: %s\ntimings: %s\n", to_string(result.finish_reason),
                 j["usage"].dump().c_str(), j["timings"].dump().c_str());
  }
  return 0;
}

RunFunction setup_run(CLI::App& command) {
  auto args = std::make_shared<RunArgs>();
  command.add_option("--model", args->model, "q3vl package directory (from `q3vl build`)")->required();
  command.add_option("--image", args->images, "Image file (repeatable; before the prompt text)");
  command.add_option("--video", args->videos, "Video file");
  command.add_option("--prompt", args->prompt, "User message text");
  command.add_option("--messages", args->messages, "OpenAI-shape messages JSON file (array or {\"messages\": [...]})");
  args->generation.add_to(command, "Most tokens to generate");
  command.add_option("--top-logprobs", args->top_logprobs,
                     "With --json: each token's logprob and its N most likely alternatives (0..20)")
      ->check(CLI::Range(0, 20));
  command.add_flag("--json", args->json, "Print one JSON object instead of streaming text");
  command.add_flag("--stats", args->stats, "Print usage and timings to stderr");
  return [args] { return run(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("run", "Generate a reply to a prompt with images / video (streamed)", setup_run);

}  // namespace q3vl::tools
