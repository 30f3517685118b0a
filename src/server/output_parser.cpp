#include "server/output_parser.h"

#include <nlohmann/json.hpp>

namespace q3vl::server {
namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kToolOpen = "<tool_call>";
constexpr std::string_view kToolClose = "</tool_call>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
std::size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  for (std::size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

bool parse_call(std::string_view body, ParsedToolCall& call) {
  const auto j = nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  call.name = j["name"].get<std::string>();
  const auto it = j.find("arguments");
  if (it == j.end() || it->is_null()) {
    call.arguments = "{}";
  } else {
    call.arguments = it->is_string() ? it->get<std::string>() : it->dump();
  }
  return true;
}

}  // namespace

OutputParser::OutputParser(bool starts_in_reasoning, bool parse_tool_calls)
    : mode_(starts_in_reasoning ? Mode::reasoning : Mode::start), parse_tool_calls_(parse_tool_calls) {}

// Text of the reasoning or content channel: leading whitespace is trimmed once per
// channel start, trailing whitespace is held until more text follows it.
void OutputParser::emit(OutputDelta& out, std::string_view text, bool final) {
  std::string& channel = mode_ == Mode::reasoning ? out.reasoning : out.content;
  for (char c : text) {
    if (is_space(c)) {
      if (!trim_leading_) held_ws_ += c;
      continue;
    }
    trim_leading_ = false;
    channel += held_ws_;
    held_ws_.clear();
    channel += c;
  }
  // Content's trailing whitespace is real text at the very end (unless the reply
  // was tool calls); reasoning's never is.
  if (final && mode_ != Mode::reasoning && tool_calls_ == 0) {
    channel += held_ws_;
    held_ws_.clear();
  }
}

void OutputParser::switch_to(OutputDelta&, Mode mode) {
  held_ws_.clear();
  trim_leading_ = true;
  mode_ = mode;
}

void OutputParser::run(OutputDelta& out, bool final) {
  for (;;) {
    switch (mode_) {
      case Mode::start: {
        // Undecided until the reply either starts with <think> or cannot.
        const std::size_t n = std::min(pending_.size(), kThinkOpen.size());
        if (pending_.compare(0, n, kThinkOpen.substr(0, n)) == 0) {
          if (pending_.size() >= kThinkOpen.size()) {
            pending_.erase(0, kThinkOpen.size());
            switch_to(out, Mode::reasoning);
            continue;
          }
          if (!final) return;
        }
        mode_ = Mode::content;
        trim_leading_ = false;  // an answer's own leading whitespace is kept
        continue;
      }
      case Mode::reasoning: {
        const std::size_t end = pending_.find(kThinkClose);
        if (end != std::string::npos) {
          emit(out, std::string_view(pending_).substr(0, end), false);
          pending_.erase(0, end + kThinkClose.size());
          switch_to(out, Mode::content);
          continue;
        }
        const std::size_t keep = final ? 0 : partial_tag_suffix(pending_, kThinkClose);
        emit(out, std::string_view(pending_).substr(0, pending_.size() - keep), final);
        pending_.erase(0, pending_.size() - keep);
        return;
      }
      case Mode::content: {
        if (parse_tool_calls_) {
          const std::size_t start = pending_.find(kToolOpen);
          if (start != std::string::npos) {
            emit(out, std::string_view(pending_).substr(0, start), false);
            pending_.erase(0, start + kToolOpen.size());
            held_ws_.clear();  // whitespace before a call is layout
            mode_ = Mode::tool_call;
            continue;
          }
        }
        const std::size_t keep = final || !parse_tool_calls_ ? 0 : partial_tag_suffix(pending_, kToolOpen);
        emit(out, std::string_view(pending_).substr(0, pending_.size() - keep), final);
        pending_.erase(0, pending_.size() - keep);
        return;
      }
      case Mode::tool_call: {
        const std::size_t end = pending_.find(kToolClose);
        if (end == std::string::npos && !final) return;
        const std::string body = pending_.substr(0, end);
        pending_.erase(0, end == std::string::npos ? pending_.size() : end + kToolClose.size());
        ParsedToolCall call;
        if (end != std::string::npos && parse_call(body, call)) {
          out.tool_calls.push_back(std::move(call));
          ++tool_calls_;
          switch_to(out, Mode::content);
        } else {
          // Not a call we can read: the model's text goes out as content, verbatim.
          mode_ = Mode::content;
          trim_leading_ = false;
          held_ws_.clear();
          emit(out, std::string(kToolOpen) + body + std::string(end == std::string::npos ? "" : kToolClose), false);
        }
        continue;
      }
    }
  }
}

OutputDelta OutputParser::feed(std::string_view text) {
  OutputDelta out;
  pending_ += text;
  run(out, false);
  return out;
}

OutputDelta OutputParser::finish() {
  OutputDelta out;
  run(out, true);
  return out;
}

OutputDelta parse_output(std::string_view text, bool starts_in_reasoning, bool parse_tool_calls) {
  OutputParser parser(starts_in_reasoning, parse_tool_calls);
  OutputDelta all = parser.feed(text);
  OutputDelta rest = parser.finish();
  all.reasoning += rest.reasoning;
  all.content += rest.content;
  for (auto& call : rest.tool_calls) all.tool_calls.push_back(std::move(call));
  return all;
}

}  // namespace q3vl::server
