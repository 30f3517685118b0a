// q3vl::Chat — one conversation's state across turns: the KV cache of the tokens seen so
// far and the vision features of media already encoded.
//
// Each generate() call takes the WHOLE conversation. Its prompt is tokenized; the longest
// prefix equal (token ids, positions and media content) to what the cache holds is reused
// and only the rest is prefilled. Media are keyed by a SHA-256 of their encoded bytes and
// the preprocessing request, so an image sent again is neither decoded nor encoded again.
// send() is the REPL convenience: it appends a user message, generates, and appends the
// reply to the history it keeps.
//
// Thread-safety: a Chat is not thread-safe (one request at a time); several Chats may
// share one Model concurrently. The Model must outlive nothing: the Chat holds a shared_ptr.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "q3vl/generate.h"
#include "q3vl/messages.h"

namespace q3vl {

// Counters for tests and `/stats` (cumulative since construction or reset()).
struct ChatStats {
  std::int64_t vision_calls = 0;       // vision graph runs
  std::int64_t vision_cache_hits = 0;  // media served from the feature cache
  std::int64_t prefilled_tokens = 0;   // prompt tokens run through the decoder
  std::int64_t reused_tokens = 0;      // prompt tokens taken from the KV cache
  std::int64_t cached_tokens = 0;      // tokens currently in the KV cache
  std::int64_t kv_capacity = 0;        // tokens the KV buffers hold now
};

class Chat {
 public:
  explicit Chat(std::shared_ptr<const Model> model);
  ~Chat();
  Chat(Chat&&) noexcept;
  Chat& operator=(Chat&&) noexcept;

  // See q3vl::generate(); reuses the cache as described above. On an exception the
  // cache is dropped (the next call prefills from scratch); the Chat stays usable.
  GenerateResult generate(const std::vector<text::Message>& conversation,
                          const GenerateOptions& options, const StreamCallback& on_text = {});

  // Appends `user` to history(), generates, appends the assistant reply (its text).
  GenerateResult send(text::Message user, const GenerateOptions& options,
                      const StreamCallback& on_text = {});
  const std::vector<text::Message>& history() const;

  // Forgets the history, KV cache and vision cache, and zeroes the stats.
  void reset();
  ChatStats stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace q3vl
