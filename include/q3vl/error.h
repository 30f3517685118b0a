// q3vl::Error — the one exception type every q3vl library call throws.
//
// Why one type: callers (the CLI's main, a server's request handler) map an
// error to an exit code or HTTP status by its kind, and print what() as-is.
// Library code never prints and exits; it throws Error with enough context
// that the message alone tells the user what to fix:
//
//   config.json: vision_config.spatial_merge_size: expected positive integer, got 0
//
// Thread-safety: an Error is an immutable value; copying it is safe anywhere.
#pragma once

#include <stdexcept>
#include <string>

namespace q3vl {

enum class ErrorKind {
  io,           // a file or stream could not be opened, read or written
  format,       // bytes are malformed (corrupt safetensors, bad JSON, undecodable image)
  config,       // a well-formed config has a missing or invalid field
  shape,        // a tensor has the wrong shape or dtype for its role
  unsupported,  // valid input that q3vl does not handle (yet): a model type, a dtype
  limit,        // input exceeds a configured limit (image pixels, context length)
  runtime,      // ONNX Runtime or another engine failed while running
  usage,        // the caller asked for something contradictory (bad CLI flags)
  unavailable,  // the service cannot take the request now (a scheduler shutting down)
};

// Lower-case name of a kind, e.g. "config".
const char* to_string(ErrorKind kind);

struct ErrorInfo {
  ErrorKind kind = ErrorKind::runtime;
  std::string file;      // file or input the error is about ("" if none)
  std::string field;     // dotted JSON key, tensor name, or argument ("" if none)
  std::string expected;  // what was expected ("" if not applicable)
  std::string got;       // what was found ("" if not applicable)
  std::string detail;    // free text when expected/got do not fit
};

class Error : public std::runtime_error {
 public:
  explicit Error(ErrorInfo info);

  ErrorKind kind() const { return info_.kind; }
  const ErrorInfo& info() const { return info_; }

 private:
  ErrorInfo info_;
};

// Builds "file: field: expected X, got Y" / "file: field: detail" messages. A NUL byte in
// any part is written as the six characters \u0000, so what() (a C string) holds the
// whole message; info() keeps the parts as given.
std::string format_error(const ErrorInfo& info);

// Shorthands for the common shapes of error. All throw q3vl::Error.
[[noreturn]] void throw_error(ErrorKind kind, std::string file, std::string field,
                              std::string expected, std::string got);
[[noreturn]] void throw_error(ErrorKind kind, std::string file, std::string detail);
// "file: field: detail", for problems that are not an expected/got mismatch.
[[noreturn]] void throw_error(ErrorKind kind, std::string file, std::string field, std::string detail);

}  // namespace q3vl
