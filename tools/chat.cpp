// q3vl chat: an interactive conversation with a package, one line per user turn.
//   q3vl chat --model PKG [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
//             [--seed S] [--max-pixels N] [--threads N] [--no-spin]
// Sampling flags mean what they mean for `q3vl run`; unset ones keep the package's
// generation_config.json values.
// Commands: /image PATH and /video PATH attach media to the next message, /reset forgets
// the conversation, /stats prints the last reply's usage and timings and the chat's cache
// counters, /quit (or end of input, Ctrl-D) exits with status 0.
// Ctrl-C never ends the REPL. During a reply it stops the reply (marked " [stopped]"; the
// conversation keeps the part already written). At the prompt (on a terminal) it drops
// the line being typed and prints a fresh prompt, however often it is pressed.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "q3vl/chat.h"
#include "q3vl/error.h"
#include "q3vl/model.h"
#include "generation_flags.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

std::atomic<bool> g_interrupted{false};
// A pipe the SIGINT handler writes one byte to, so that a prompt waiting in poll() wakes
// up whichever thread the kernel ran the handler on, and however soon after the prompt
// was printed the Ctrl-C came (a flag checked before a blocking read would miss one that
// lands between the check and the read). Both ends non-blocking.
int g_wakeup[2] = {-1, -1};

extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  const char byte = 0;
  const ssize_t ignored = ::write(g_wakeup[1], &byte, 1);  // a full pipe already wakes
  (void)ignored;
}

// Routes SIGINT to on_sigint, with SA_RESTART so that a Ctrl-C never cuts a write to
// stdout while a reply streams.
void catch_sigint() {
  if (::pipe2(g_wakeup, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw_error(ErrorKind::runtime, "chat", "SIGINT pipe", "a pipe", std::strerror(errno));
  }
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
}

// Forgets Ctrl-Cs seen so far (one that stopped the last reply is spent).
void forget_interrupts() {
  char bytes[64];
  while (::read(g_wakeup[0], bytes, sizeof bytes) > 0) {
  }
  g_interrupted.store(false);
}

// Waits for input on stdin (a line, or end of input) or a Ctrl-C; false for a Ctrl-C.
bool wait_for_input() {
  pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_wakeup[0], POLLIN, 0}};
  while (::poll(fds, 2, -1) < 0) {
    if (errno != EINTR) return true;  // let the read report the problem
  }
  return (fds[1].revents & POLLIN) == 0;
}

// One line from stdin into `line`; false at end of input. On a terminal, a Ctrl-C while
// the prompt waits prints a fresh prompt (the terminal itself discards the typed line).
// A terminal in canonical mode hands over one line per read, so stdio holds no
// buffered input while the prompt waits in poll().
bool read_line(bool interactive, std::string& line) {
  forget_interrupts();
  while (interactive) {
    std::printf("> ");
    std::fflush(stdout);
    if (wait_for_input()) break;
    forget_interrupts();
    std::printf("\n");
  }
  return static_cast<bool>(std::getline(std::cin, line));
}

struct ChatArgs {
  std::filesystem::path model;
  GenerationFlags generation;
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
  const auto model = Model::load(args.model, args.generation.model_options());
  GenerateOptions options = model->default_options();
  args.generation.apply(options);

  catch_sigint();
  const bool interactive = isatty(STDIN_FILENO) != 0;
  Chat chat(model);
  std::vector<text::ContentPart> attached;
  std::optional<GenerateResult> last;
  std::string line;
  while (read_line(interactive, line)) {
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
  args->generation.add_to(command, "Most tokens per reply");
  return [args] { return run(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("chat", "Interactive chat with a package (/image, /video, /reset, /stats, /quit)", setup_chat);

}  // namespace q3vl::tools
