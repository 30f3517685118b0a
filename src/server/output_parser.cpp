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

// A whole `{"name": ..., "arguments": ...}` block in any key order.
bool parse_call(std::string_view body, ParsedToolCall& call) {
  const auto j = nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
    return false;
  }
  call.name = j["name"].get<std::string>();
  const auto it = j.find("arguments");
  if (it == j.end() || it->is_null()) {
    call.arguments = "{}";
  } else {
    call.arguments = it->is_string() ? it->get<std::string>() : it->dump();
  }
  return true;
}

// Matches the streamable header `{"name": "<plain name>", "arguments": ` at the start of
// `body`. Returns the header's length with `name` set; 0 if `body` may still become one
// (too short to tell); npos if it cannot.
std::size_t match_header(std::string_view body, std::string& name) {
  std::size_t i = 0;
  auto spaces = [&] {
    while (i < body.size() && is_space(body[i])) ++i;
  };
  // Each literal must match as far as the text goes.
  auto literal = [&](std::string_view word) -> int {  // 1 matched, 0 text ended, -1 mismatch
    for (char c : word) {
      if (i == body.size()) return 0;
      if (body[i++] != c) return -1;
    }
    return 1;
  };
  for (std::string_view word : {"{", "\"name\"", ":"}) {
    spaces();
    if (const int r = literal(word); r <= 0) return r == 0 ? 0 : std::string_view::npos;
  }
  spaces();
  if (const int r = literal("\""); r <= 0) return r == 0 ? 0 : std::string_view::npos;
  const std::size_t start = i;
  while (i < body.size() && body[i] != '"') {
    if (body[i] == '\\') return std::string_view::npos;  // escaped names: parse the block whole
    ++i;
  }
  if (i == body.size()) return 0;
  name = std::string(body.substr(start, i - start));
  ++i;
  for (std::string_view word : {",", "\"arguments\"", ":"}) {
    spaces();
    if (const int r = literal(word); r <= 0) return r == 0 ? 0 : std::string_view::npos;
  }
  spaces();
  if (i == body.size()) return 0;
  // A string value would need unescaping as it streams: parse the block whole.
  if (body[i] == '"' || name.empty()) return std::string_view::npos;
  return i;
}

}  // namespace

void accumulate(ParsedOutput& output, const OutputDelta& delta) {
  output.reasoning += delta.reasoning;
  output.content += delta.content;
  for (const ToolCallDelta& d : delta.tool_calls) {
    if (d.index >= static_cast<int>(output.tool_calls.size())) output.tool_calls.resize(static_cast<std::size_t>(d.index) + 1);
    ParsedToolCall& call = output.tool_calls[static_cast<std::size_t>(d.index)];
    call.name += d.name;
    call.arguments += d.arguments;
  }
}

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

void OutputParser::switch_to(Mode mode) {
  held_ws_.clear();
  trim_leading_ = true;
  mode_ = mode;
}

void OutputParser::fall_back_to_content(OutputDelta& out, const std::string& raw) {
  mode_ = Mode::content;
  trim_leading_ = false;
  held_ws_.clear();
  emit(out, raw, false);
}

bool OutputParser::run_tool_call(OutputDelta& out, bool final) {
  const std::size_t end = pending_.find(kToolClose);
  if (phase_ == CallPhase::header) {
    std::string name;
    const std::size_t header = match_header(pending_, name);
    if (header == std::string_view::npos) {
      phase_ = CallPhase::whole;
    } else if (header > 0 && (end == std::string::npos || header <= end)) {
      out.tool_calls.push_back({tool_calls_++, std::move(name), ""});
      pending_.erase(0, header);
      phase_ = CallPhase::arguments;
      return true;
    } else if (end == std::string::npos && !final) {
      return false;  // too short to tell yet
    } else {
      phase_ = CallPhase::whole;
    }
  }
  if (phase_ == CallPhase::arguments) {
    std::string& arguments = out.tool_calls.empty() || out.tool_calls.back().index != tool_calls_ - 1
                                 ? out.tool_calls.emplace_back(ToolCallDelta{tool_calls_ - 1, "", ""}).arguments
                                 : out.tool_calls.back().arguments;
    if (end != std::string::npos || final) {
      // The block ends (or the reply does): drop the wrapper's closing brace.
      std::size_t n = end == std::string::npos ? pending_.size() : end;
      if (end != std::string::npos) {
        while (n > 0 && is_space(pending_[n - 1])) --n;
        if (n > 0 && pending_[n - 1] == '}') --n;
        while (n > 0 && is_space(pending_[n - 1])) --n;
      }
      arguments += pending_.substr(0, n);
      pending_.erase(0, end == std::string::npos ? pending_.size() : end + kToolClose.size());
      if (out.tool_calls.back().name.empty() && out.tool_calls.back().arguments.empty()) out.tool_calls.pop_back();
      phase_ = CallPhase::header;
      switch_to(Mode::content);
      return true;
    }
    // Hold back what may still be the wrapper's end: spaces, `}`, spaces, part of the tag.
    std::size_t n = pending_.size() - partial_tag_suffix(pending_, kToolClose);
    while (n > 0 && is_space(pending_[n - 1])) --n;
    if (n > 0 && pending_[n - 1] == '}') --n;
    while (n > 0 && is_space(pending_[n - 1])) --n;
    arguments += pending_.substr(0, n);
    pending_.erase(0, n);
    if (out.tool_calls.back().name.empty() && out.tool_calls.back().arguments.empty()) out.tool_calls.pop_back();
    return false;
  }
  // CallPhase::whole: the block is parsed once it is complete.
  if (end == std::string::npos && !final) return false;
  const std::string body = pending_.substr(0, end);
  pending_.erase(0, end == std::string::npos ? pending_.size() : end + kToolClose.size());
  phase_ = CallPhase::header;
  ParsedToolCall call;
  if (end != std::string::npos && parse_call(body, call)) {
    out.tool_calls.push_back({tool_calls_++, std::move(call.name), std::move(call.arguments)});
    switch_to(Mode::content);
  } else {
    fall_back_to_content(out, std::string(kToolOpen) + body + std::string(end == std::string::npos ? "" : kToolClose));
  }
  return true;
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
            switch_to(Mode::reasoning);
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
          switch_to(Mode::content);
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
            phase_ = CallPhase::header;
            continue;
          }
        }
        const std::size_t keep = final || !parse_tool_calls_ ? 0 : partial_tag_suffix(pending_, kToolOpen);
        emit(out, std::string_view(pending_).substr(0, pending_.size() - keep), final);
        pending_.erase(0, pending_.size() - keep);
        return;
      }
      case Mode::tool_call:
        if (!run_tool_call(out, final)) return;
        continue;
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

ParsedOutput parse_output(std::string_view text, bool starts_in_reasoning, bool parse_tool_calls) {
  OutputParser parser(starts_in_reasoning, parse_tool_calls);
  ParsedOutput all;
  accumulate(all, parser.feed(text));
  accumulate(all, parser.finish());
  return all;
}

}  // namespace q3vl::server
