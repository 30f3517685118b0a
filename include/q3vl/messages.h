// q3vl::text::Message — one conversation turn, the type the runtime, the CLI
// and (later) the HTTP server share, and its conversion from OpenAI-shape JSON.
//
// A conversation is a std::vector<Message>. Content is absent, a plain string,
// or an ordered list of parts (text, image, video). Media are referenced, not
// loaded: by local path, by http(s) URL (the server decides whether to allow
// it), by data: URL, or as bytes held in memory.
//
// Thread-safety: plain values; the parse functions are pure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace q3vl::text {

struct MediaSource {
  enum class Kind {
    path,      // `location` is a local file path (a file:// URL is turned into one)
    http_url,  // `location` is an http:// or https:// URL
    data_url,  // `location` is the whole data: URL ("data:image/png;base64,...")
    bytes,     // the encoded file is in `bytes`; `location` is empty
  };
  Kind kind = Kind::path;
  std::string location;
  std::vector<std::uint8_t> bytes;
};

struct ContentPart {
  enum class Type { text, image, video };
  Type type = Type::text;
  std::string text;   // Type::text only
  MediaSource media;  // Type::image / Type::video only
};

// A function call an assistant turn made (OpenAI `tool_calls[i]`).
struct ToolCall {
  std::string id;    // "" if not given
  std::string name;  // function.name
  // function.arguments exactly as given: a JSON string's text (usually itself
  // JSON) when `arguments_is_string`, otherwise the serialized JSON value (an
  // object), which templates print with tojson.
  std::string arguments;
  bool arguments_is_string = true;
};

using MessageContent = std::variant<std::monostate, std::string, std::vector<ContentPart>>;

struct Message {
  std::string role;        // "system", "user", "assistant", "tool", ... (the template decides)
  MessageContent content;  // std::monostate: no content (null or absent)
  // The assistant's reasoning (HF `reasoning_content`; "reasoning" and "thinking" are accepted too).
  std::optional<std::string> reasoning_content;
  std::vector<ToolCall> tool_calls;
  std::optional<std::string> tool_call_id;  // tool turns
  std::optional<std::string> name;
};

// Parses a JSON array of messages in the OpenAI chat shape:
//   {"role": "user", "content": "text"}
//   {"role": "user", "content": [{"type": "text", "text": "..."},
//                                {"type": "image_url", "image_url": {"url": "..."}},  // or "image_url": "..."
//                                {"type": "video_url", "video_url": {"url": "..."}}]}
//   {"role": "assistant", "content": null, "tool_calls": [{"id": "...", "type": "function",
//                                "function": {"name": "...", "arguments": "{...}"}}]}
//   {"role": "tool", "tool_call_id": "...", "content": "..."}
// Hugging Face's own part shapes are accepted too: {"type": "image", "image"|"url"|"path": "..."},
// {"type": "video", "video"|"url"|"path": "..."}, and tool calls without the "function" wrapper.
// A url is a local path, a file:// URL, an http(s) URL or a data: URL.
// Unknown keys are rejected, except OpenAI response fields with no meaning for
// the prompt ("refusal", "annotations"), which are ignored.
// Throws q3vl::Error(format) whose message is `<source>: <JSON path>: expected ..., got ...`,
// e.g. `request.json: messages[1].content[0].image_url.url: expected string, got number`.
// `source` names the input in messages; `path_prefix` is prepended to JSON paths.
std::vector<Message> parse_messages_json(std::string_view json, const std::string& source,
                                         const std::string& path_prefix = "messages");

// A chat request file as the CLI reads it: either a JSON array of messages, or an
// object with "messages" (and optionally "tools", a JSON array kept as text; other
// keys, e.g. an OpenAI request body's "model", are left to other layers).
struct ChatRequest {
  std::vector<Message> messages;
  std::optional<std::string> tools_json;
};
ChatRequest parse_chat_request_json(std::string_view json, const std::string& source);
// Reads a file and parses it with parse_chat_request_json. Throws q3vl::Error(io)
// if it cannot be read, (format) as above.
ChatRequest read_chat_request_file(const std::filesystem::path& path);
// Reads a JSON file holding an array of tool definitions and returns it as
// compact JSON text (key order kept). Throws q3vl::Error(io) / (format).
std::string read_tools_file(const std::filesystem::path& path);

// Turns an OpenAI/HF media url (as in image_url.url) into a MediaSource.
// Throws q3vl::Error(format) naming `source` and `field` for an empty url or an
// unsupported scheme (only file, http, https and data are accepted).
MediaSource parse_media_url(std::string_view url, const std::string& source, const std::string& field);

}  // namespace q3vl::text
