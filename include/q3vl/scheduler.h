// q3vl::Scheduler — continuous batching of many generation requests over one Model: the
// runtime half of `q3vl serve` (the HTTP layer in src/server/ is a client of this header).
//
// N slots, each with its own region of one KV buffer sized at construction
// (parallel x ctx_per_slot tokens). A request is validated, its media decoded and
// encoded, and its prompt built on the thread that calls submit(); it then waits in a
// bounded queue for a free slot. The scheduler thread loops: admit waiting requests into
// free slots, run at most ONE prefill chunk (prefill_chunk_tokens prompt tokens of one
// slot), then ONE decoder call for every slot that is generating (batch > 1), and hand
// each sequence its logits row. A long image prompt therefore delays the other streams by
// one chunk per step, never by its whole prefill.
//
// Caches: a slot keeps its KV rows after a reply; a new request goes to the free slot
// whose cached tokens share the longest prefix (ids, media content, positions) with its
// prompt, and only the rest is prefilled (multi-turn chat; Usage::cached_tokens).
// Encoded media are kept in an LRU of `vision_cache_entries` entries keyed by a SHA-256 of
// their bytes and preprocessing request, shared by all requests.
//
// Determinism: each request samples with its own random stream (SamplingOptions::seed),
// and greedy tokens do not depend on the other sequences in the batch, up to float
// near-ties (a batched matmul may round differently from a batch-1 one).
//
// Thread-safety: submit(), cancel(), stats(), options() and shutdown() may be called from
// any thread at once. Callbacks run on the scheduler thread, one at a time; they must not
// block for long (every stream waits for them) and must not call shutdown() or destroy
// the Scheduler (deadlock); calling submit()/cancel()/stats() from a callback is fine.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "q3vl/error.h"
#include "q3vl/generate.h"
#include "q3vl/messages.h"

namespace q3vl {

class Model;

// One generated token as it streams. `piece` and `top` are valid during the on_token call.
struct TokenEvent {
  std::int64_t token_id = 0;
  std::string_view piece;          // text this token released (valid UTF-8; may be empty while a
                                   // multi-byte char or a possible stop string is held back, and
                                   // is empty for a stop token). The pieces of all events
                                   // concatenate to GenerateResult::text.
  float logprob = 0.0f;            // log-softmax of the chosen token (if top_logprobs >= 0)
  std::vector<TokenLogprob> top;   // top_logprobs alternatives, most likely first
};

struct RequestCallbacks {
  // Each generated token, in order. Return false to cancel (client gone): the request then
  // ends as by cancel(). May be empty.
  std::function<bool(const TokenEvent&)> on_token;
  // Exactly one of on_done / on_error is called per accepted request, last, once.
  // on_done: the result (finish_reason cancelled after cancel(), on_token returning
  // false, or shutdown's grace running out). Empty text/tokens if it never started.
  std::function<void(const GenerateResult&)> on_done;
  // on_error: a failure after submit() returned (ONNX Runtime failure: kind runtime), or
  // kind unavailable for a request still queued when shutdown() cancelled it.
  std::function<void(const Error&)> on_error;
};

struct SchedulerOptions {
  int parallel = 4;                         // slots: sequences decoded together, >= 1
  std::int64_t ctx_per_slot = 4096;         // KV tokens per slot (prompt + generated), >= 2
                                            // and <= the model's context length; sized at start
  std::int64_t max_queue = 64;              // waiting requests beyond busy slots (>= 0);
                                            // more -> Error(limit)
  std::int64_t prefill_chunk_tokens = 256;  // prefill runs in chunks interleaved with decode, >= 1
  std::int64_t vision_cache_entries = 64;   // LRU of encoded media by content hash; 0 = none kept
};

struct SchedulerStats {                   // a snapshot for /metrics and /health
  std::int64_t queued = 0, active_slots = 0, slots = 0;
  std::int64_t kv_tokens_used = 0, kv_tokens_capacity = 0;   // summed over slots (used: rows
                                                             // held, incl. kept prefixes)
  std::int64_t kv_bytes = 0;                                 // allocated KV memory
  std::int64_t requests_total = 0, prompt_tokens_total = 0, completion_tokens_total = 0;
  std::int64_t cached_prompt_tokens_total = 0;
  std::int64_t decode_steps_total = 0;   // batched decoder calls
  std::int64_t vision_calls_total = 0;   // vision graph runs
  std::int64_t vision_cache_hits_total = 0;  // media served from the vision cache
};

class Scheduler {
 public:
  using RequestId = std::uint64_t;

  // Starts the scheduler thread; allocates (and zeroes) KV for parallel x ctx_per_slot
  // tokens now (SchedulerStats::kv_bytes). Throws q3vl::Error(usage) naming the
  // option for a value out of range, (limit) if the KV memory cannot be allocated. The
  // Model is kept alive by the Scheduler.
  Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options);
  ~Scheduler();  // = shutdown(0ms)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues one generation of the assistant's reply to `conversation` (as q3vl::generate).
  // Runs on the calling thread: option checks, media decoding + vision encoding (or a
  // vision-cache hit), chat template + tokenization. Throws q3vl::Error and then calls no
  // callback: usage (bad options, empty prompt), limit (queue full: field "max_queue";
  // prompt + 1 > ctx_per_slot: field "ctx_per_slot", giving both sizes), io / format /
  // unsupported (unreadable, undecodable or remote media: names it), unavailable (after
  // shutdown() began). max_new_tokens is cut to what the slot has room for (finish_reason
  // length). Once it returns, exactly one of on_done / on_error will be called.
  RequestId submit(std::vector<text::Message> conversation, GenerateOptions options,
                   RequestCallbacks callbacks);

  // Stops request `id` before the next decoder step (queued: never starts); its slot is
  // free again and on_done gets finish_reason cancelled with what was generated so far.
  // Unknown or finished ids are ignored.
  void cancel(RequestId id);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const;

  // Stops accepting (submit throws Error(unavailable)), lets queued and running requests
  // continue for up to `grace`, then cancels what is left (running: on_done cancelled;
  // queued: on_error unavailable); returns when the thread has stopped. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace q3vl
