// OpenAI-shape chat requests ({"messages": [...], "tools": [...]}) and bare message
// arrays: what `q3vl run --messages` and the server read from users.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "harness.h"
#include "q3vl/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  q3vl::fuzz::expect_clean([&] { q3vl::text::parse_chat_request_json(text, "request.json"); });
  q3vl::fuzz::expect_clean([&] { q3vl::text::parse_messages_json(text, "messages.json"); });
  return 0;
}
