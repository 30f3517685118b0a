#include "q3vl/error.h"

#include <utility>

namespace q3vl {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::io: return "io";
    case ErrorKind::format: return "format";
    case ErrorKind::config: return "config";
    case ErrorKind::shape: return "shape";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::limit: return "limit";
    case ErrorKind::runtime: return "runtime";
    case ErrorKind::usage: return "usage";
    case ErrorKind::unavailable: return "unavailable";
  }
  return "unknown";
}

std::string format_error(const ErrorInfo& info) {
  std::string message;
  auto append_part = [&message](const std::string& part) {
    if (part.empty()) return;
    if (!message.empty()) message += ": ";
    message += part;
  };
  append_part(info.file);
  append_part(info.field);
  if (!info.expected.empty() || !info.got.empty()) {
    std::string what;
    if (!info.expected.empty()) what = "expected " + info.expected;
    if (!info.got.empty()) what += (what.empty() ? "got " : ", got ") + info.got;
    append_part(what);
  }
  append_part(info.detail);
  if (message.empty()) message = std::string(to_string(info.kind)) + " error";
  // what() is a C string: a NUL inside a quoted name (a client's JSON key) would end it
  // there, dropping the rest of the message.
  std::string visible;
  visible.reserve(message.size());
  for (const char c : message) {
    if (c == '\0') {
      visible += "\\u0000";
    } else {
      visible += c;
    }
  }
  return visible;
}

Error::Error(ErrorInfo info) : std::runtime_error(format_error(info)), info_(std::move(info)) {}

void throw_error(ErrorKind kind, std::string file, std::string field, std::string expected,
                 std::string got) {
  throw Error(ErrorInfo{kind, std::move(file), std::move(field), std::move(expected),
                        std::move(got), {}});
}

void throw_error(ErrorKind kind, std::string file, std::string detail) {
  throw Error(ErrorInfo{kind, std::move(file), {}, {}, {}, std::move(detail)});
}

void throw_error(ErrorKind kind, std::string file, std::string field, std::string detail) {
  throw Error(ErrorInfo{kind, std::move(file), std::move(field), {}, {}, std::move(detail)});
}

}  // namespace q3vl
