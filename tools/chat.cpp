// q3vl chat: an interactive conversation with a package, one line per user turn.
//   q3vl chat --model PKG [--max-new-tokens N] [--temperature T] [--seed S] [--threads N]
// Commands: /image PATH and /video PATH attach media to the next message, /reset forgets
// the conversation, /stats prints the last reply's usage and timings and the chat's cache
// counters, /quit (or end of input) exits. Ctrl-C stops the reply being generated, not the
// REPL: the SIGINT handler only sets a flag that the streaming callback checks.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "q3vl/chat.h"
#include "q3vl/error.h"
#include "q3vl/model.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted.store(true); }

struct ChatArgs {
  std::filesystem::path model;
  std::optional<std::int64_t> max_new_tokens;
  std::optional<float> temperature;
  std::optional<std::uint64_t> seed;
  int threads = 0;
};

text::ContentPart media_part(text::ContentPart::Type type, const std::string& path) {
  text::ContentPart part;
  part.type = type;
  part.media.location = path;
  return part;
}

void print_stats(const GenerateResult* last, const ChatStats& s) {
  if (last != nullptr) {
    const Usage& u = last->usage;
    const Timings& t = last->timings;
    std::printf("[usage] prompt %lld (cached %lld, image %lld, video %lld), completion %lld, finish %s\n",
                static_cast<long long>(u.prompt_tokens), static_cast<long long>(u.cached_tokens),
                static_cast<long long>(u.image_tokens), static_cast<long long>(u.video_tokens),
                static_cast<long long>(u.completion_tokens), to_string(last->finish_reason));
    std::printf("[timings] vision %.1f ms, prefill %.1f ms (%.1f tok/s), decode %.1f tok/s, ttft %.1f ms\n",
                t.vision_ms, t.prefill_ms, t.prefill_tokens_per_s, t.decode_tokens_per_s, t.ttft_ms);
  }
  std::printf("[chat] vision calls %lld, vision cache hits %lld, prefilled %lld, reused %lld, cached %lld / %lld\n",
              static_cast<long long>(s.vision_calls), static_cast<long long>(s.vision_cache_hits),
              static_cast<long long>(s.prefilled_tokens), static_cast<long long>(s.reused_tokens),
              static_cast<long long>(s.cached_tokens), static_cast<long long>(s.kv_capacity));
}

int run(const ChatArgs& args) {
  ModelOptions model_options;
  model_options.intra_op_threads = args.threads;
  const auto model = Model::load(args.model, model_options);
  GenerateOptions options = model->default_options();
  if (args.max_new_tokens) options.max_new_tokens = *args.max_new_tokens;
  if (args.temperature) {
    options.sampling.temperature = *args.temperature;
    options.sampling.do_sample = *args.temperature > 0.0f;
  }
  if (args.seed) options.sampling.seed = *args.seed;

  std::signal(SIGINT, on_sigint);
  const bool interactive = isatty(STDIN_FILENO) != 0;
  Chat chat(model);
  std::vector<text::ContentPart> attached;
  std::optional<GenerateResult> last;
  std::string line;
  while (true) {
    if (interactive) {
      std::printf("> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) {
      if (g_interrupted.exchange(false) && interactive) {  // Ctrl-C at the prompt: keep going
        std::cin.clear();
        std::printf("\n");
        continue;
      }
      break;
    }
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      chat.reset();
      attached.clear();
      last.reset();
      std::printf("[reset]\n");
      continue;
    }
    if (line == "/stats") {
      print_stats(last ? &*last : nullptr, chat.stats());
      continue;
    }
    if (line.rfind("/image ", 0) == 0 || line.rfind("/video ", 0) == 0) {
      const bool video = line[1] == 'v';
      attached.push_back(media_part(video ? text::ContentPart::Type::video : text::ContentPart::Type::image,
                                    line.substr(7)));
      std::printf("[attached %s %s]\n", video ? "video" : "image", line.substr(7).c_str());
      continue;
    }
    if (line[0] == '/') {
      std::printf("[unknown command %s: /image PATH, /video PATH, /reset, /stats, /quit]\n", line.c_str());
      continue;
    }
    text::Message user;
    user.role = "user";
    std::vector<text::ContentPart> parts = std::move(attached);
    attached.clear();
    text::ContentPart prompt;
    prompt.text = line;
    parts.push_back(prompt);
    user.content = std::move(parts);
    g_interrupted.store(false);
    try {
      last = chat.send(std::move(user), options, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return !g_interrupted.load();
      });
      std::printf(last->finish_reason == FinishReason::cancelled ? " [stopped]\n" : "\n");
    } catch (const Error& e) {
      // A bad turn (unreadable image, prompt over the context) is reported; the chat goes on.
      std::printf("[error] %s\n", e.what());
    }
    std::fflush(stdout);
  }
  return 0;
}

RunFunction setup_chat(CLI::App& command) {
  auto args = std::make_shared<ChatArgs>();
  command.add_option("--model", args->model, "q3vl package directory (from `q3vl build`)")->required();
  command.add_option("--max-new-tokens", args->max_new_tokens, "Most tokens per reply")->check(CLI::PositiveNumber);
  command.add_option("--temperature", args->temperature, "Sampling temperature (0 = greedy)")->check(CLI::NonNegativeNumber);
  command.add_option("--seed", args->seed, "Random seed (reproducible sampling)");
  command.add_option("--threads", args->threads, "Threads per op (0 = all cores)")->check(CLI::NonNegativeNumber);
  return [args] { return run(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("chat", "Interactive chat with a package (/image, /video, /reset, /stats, /quit)", setup_chat);

}  // namespace q3vl::tools
