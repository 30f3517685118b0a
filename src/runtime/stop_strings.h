// Stop strings matched across token boundaries while text streams out.
//
// Text arrives in pieces (one per decoded token, already valid UTF-8). A stop
// string may span pieces, so the matcher holds back the longest tail of the
// text that could still grow into a stop string, and releases it once it can
// no longer match. When a stop string completes, everything before it is
// released and the rest (the stop string and anything after) is dropped, as the
// OpenAI API does.
//
// Not thread-safe; one matcher per generation.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace q3vl::runtime {

class StopStringMatcher {
 public:
  // Empty stop strings are ignored.
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  struct Result {
    std::string releasable;  // text that can be shown now
    bool stopped = false;    // a stop string completed; generation should end
  };

  // Adds the next piece of generated text.
  Result push(std::string_view piece);
  // End of generation (no stop string hit): releases whatever was held back.
  std::string flush();

  bool stopped() const { return stopped_; }
  bool empty() const { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet released
  bool stopped_ = false;
};

}  // namespace q3vl::runtime
