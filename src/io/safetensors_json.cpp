#include "io/safetensors_json.h"

#include <set>
#include <vector>

#include "q3vl/error.h"

namespace q3vl::io {
namespace {

constexpr int kMaxDepth = 128;

// Tracks the keys seen in each open object while nlohmann parses; an exception
// thrown from the callback aborts the parse and propagates unchanged.
class DuplicateKeyCheck {
 public:
  DuplicateKeyCheck(const std::string& file, std::uint64_t max_tensors) : file_(file), max_tensors_(max_tensors) {}

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (depth > kMaxDepth) {
      throw_error(ErrorKind::format, file_, "JSON nesting", "at most " + std::to_string(kMaxDepth),
                  "deeper");
    }
    switch (event) {
      case Event::object_start:
        objects_.push_back({});
        break;
      case Event::object_end:
        if (!objects_.empty()) objects_.pop_back();
        break;
      case Event::key: {
        Frame& frame = objects_.back();
        frame.last_key = parsed.get<std::string>();
        if (!frame.keys.insert(frame.last_key).second) {
          throw_error(ErrorKind::format, file_, path(), "unique keys", "duplicate key");
        }
        if (objects_.size() == 1 && frame.last_key != "__metadata__" && ++tensors_ > max_tensors_) {
          throw_error(ErrorKind::limit, file_, "tensor count",
                      "at most " + std::to_string(max_tensors_) + " tensors (SafetensorsLimits::max_tensors)",
                      "more");
        }
        break;
      }
      default:
        break;
    }
    return true;
  }

 private:
  struct Frame {
    std::set<std::string> keys;
    std::string last_key;
  };

  std::string path() const {
    std::string dotted;
    for (const Frame& frame : objects_) {
      if (!dotted.empty()) dotted += '.';
      dotted += frame.last_key;
    }
    return dotted;
  }

  const std::string& file_;
  const std::uint64_t max_tensors_;
  std::uint64_t tensors_ = 0;  // keys of the root object so far, "__metadata__" aside
  std::vector<Frame> objects_;
};

}  // namespace

nlohmann::json parse_json_strict(std::string_view text, const std::string& file, std::uint64_t max_tensors) {
  // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0garbage" would
  // parse; JSON allows no raw NUL anywhere (not even inside strings).
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    throw_error(ErrorKind::format, file,
                "invalid JSON: NUL byte at offset " + std::to_string(nul));
  }
  DuplicateKeyCheck check(file, max_tensors);
  try {
    return nlohmann::json::parse(text.begin(), text.end(),
                                 [&check](int depth, nlohmann::json::parse_event_t event,
                                          nlohmann::json& parsed) {
                                   return check(depth, event, parsed);
                                 });
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::format, file, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace q3vl::io
