// Scheduler: submit-side preparation, the slot loop, batched decode (include/q3vl/scheduler.h).
//
// Threads: submit() prepares a Request on the caller's thread (media, vision encoding,
// prompt) and queues it; the scheduler thread owns the slots, the KV pool and the decoder
// runner. `mutex` guards only what both sides touch: the queue, the cancel set, the
// stopping flag and the stats. Callbacks run on the scheduler thread with no lock held.
//
// KV layout: slot s owns rows [0, ctx_per_slot) of block s of every layer's buffer
// (kv_pool.h). A decode step binds the consecutive slots from the first to the last
// generating one as one batch; a slot in between that is not generating (free, or between
// prefill chunks) rides along: its row gets a dummy token written just past its valid
// rows, and its length does not advance, so what it holds survives. That row always
// exists: a slot's valid rows never exceed prompt + max_new - 1 <= ctx_per_slot - 1.
#include "q3vl/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "q3vl/model.h"
#include "runtime/decoder_runner.h"
#include "runtime/kv_contents.h"
#include "runtime/kv_pool.h"
#include "runtime/model_parts.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/sequence.h"
#include "runtime/vision_features.h"

namespace q3vl {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void check_options(const SchedulerOptions& o, const Model& model) {
  auto fail = [](const char* field, const std::string& expected, std::int64_t got) {
    throw_error(ErrorKind::usage, "", field, expected, std::to_string(got));
  };
  if (o.parallel < 1) fail("parallel", "an integer >= 1", o.parallel);
  if (o.ctx_per_slot < 2 || o.ctx_per_slot > model.context_length()) {
    fail("ctx_per_slot", "2.." + std::to_string(model.context_length()) + " (the model's context length)",
         o.ctx_per_slot);
  }
  if (o.max_queue < 0) fail("max_queue", "an integer >= 0", o.max_queue);
  if (o.prefill_chunk_tokens < 1) fail("prefill_chunk_tokens", "an integer >= 1", o.prefill_chunk_tokens);
  if (o.vision_cache_entries < 0) fail("vision_cache_entries", "an integer >= 0", o.vision_cache_entries);
}

// A failure while running a request, as the q3vl::Error its on_error gets: a q3vl::Error
// as it is, anything else (an allocation failure, a callback's exception) as kind runtime.
Error as_error(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return *error;
  return Error({ErrorKind::runtime, "", "scheduler", "", "", e.what()});
}

// One accepted request: everything submit() prepared, owned by the queue, then its slot.
struct Request {
  Scheduler::RequestId id = 0;
  GenerateOptions options;
  RequestCallbacks callbacks;
  std::vector<runtime::PromptMedium> images, videos;  // the prompt's VisualRows point into them
  runtime::Prompt prompt;
  std::int64_t max_new = 0;
  runtime::VisionRunStats vision;
  Clock::time_point submitted;
};

struct Slot {
  runtime::KvContents cached;          // what the slot's KV rows hold
  std::unique_ptr<Request> request;    // null: free
  std::optional<runtime::Sequence> sequence;  // set once the prompt is prefilled
  std::int64_t reused = 0;             // prompt tokens taken from the cache
  Clock::time_point prefill_start;
  Clock::time_point prefill_end;
  Clock::time_point last_used;
  std::uint64_t admitted = 0;          // admission order, for FIFO prefill

  bool busy() const { return request != nullptr; }
  bool prefilling() const { return busy() && !sequence; }
  bool decoding() const { return busy() && sequence && !sequence->finished(); }
};

}  // namespace

struct Scheduler::State {
  State(std::shared_ptr<const Model> m, SchedulerOptions o)
      : model(std::move(m)),
        parts(model->parts()),
        options(o),
        runner(parts),
        pool(parts.manifest.num_hidden_layers, parts.manifest.num_key_value_heads, parts.manifest.head_dim,
             o.parallel, o.ctx_per_slot, runtime::parse_kv_dtype(parts.manifest.kv_cache_dtype)),
        slots(static_cast<std::size_t>(o.parallel)),
        vision(parts, static_cast<std::size_t>(o.vision_cache_entries)) {
    stats.slots = o.parallel;
    stats.kv_tokens_capacity = o.parallel * o.ctx_per_slot;
    stats.kv_bytes = pool.bytes();
  }

  std::shared_ptr<const Model> model;
  const runtime::ModelParts& parts;  // owned by *model, which this State keeps alive
  const SchedulerOptions options;

  // Scheduler thread only.
  runtime::DecoderRunner runner;
  runtime::KvPool pool;
  std::vector<Slot> slots;
  std::uint64_t admissions = 0;
  std::vector<std::int64_t> step_ids, step_positions, step_past;
  std::vector<float> step_embeds;

  runtime::VisionCache vision;  // thread-safe; used by submit()

  // Guarded by `mutex`.
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::unique_ptr<Request>> queue;
  std::unordered_set<RequestId> cancels;
  bool stopping = false;
  Clock::time_point deadline;
  RequestId next_id = 1;
  SchedulerStats stats;

  std::mutex join_mutex;  // serialises shutdown()'s join
  std::thread thread;

  void loop();
  // Work of one iteration; returns false when the thread should end.
  bool iterate();
  void admit(std::unique_ptr<Request> request);
  void apply_cancels(const std::unordered_set<RequestId>& ids, std::vector<std::unique_ptr<Request>>& dropped);
  void prefill_one();
  void decode_step();
  void complete(Slot& slot);
  void fail(Slot& slot, const Error& error);
  void publish_stats();
};

void Scheduler::State::loop() {
  while (iterate()) {
  }
}

bool Scheduler::State::iterate() {
  std::vector<std::unique_ptr<Request>> newly;
  std::vector<std::unique_ptr<Request>> dropped;  // queued requests cancelled
  std::unordered_set<RequestId> cancel_ids;
  bool final_round = false;
  {
    std::unique_lock lock(mutex);
    const bool any_busy = std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy(); });
    wake.wait(lock, [&] { return stopping || any_busy || !queue.empty() || !cancels.empty(); });
    cancel_ids.swap(cancels);
    if (stopping && Clock::now() >= deadline) {
      final_round = true;
      while (!queue.empty()) {
        dropped.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    // Queued requests cancelled before they started.
    for (auto it = queue.begin(); it != queue.end();) {
      if (cancel_ids.count((*it)->id)) {
        dropped.push_back(std::move(*it));
        it = queue.erase(it);
      } else {
        ++it;
      }
    }
    auto free_slots = std::count_if(slots.begin(), slots.end(), [](const Slot& s) { return !s.busy(); });
    while (!final_round && free_slots > 0 && !queue.empty()) {
      newly.push_back(std::move(queue.front()));
      queue.pop_front();
      --free_slots;
    }
    stats.queued = static_cast<std::int64_t>(queue.size());
    stats.active_slots = options.parallel - free_slots;
  }
  for (auto& request : dropped) {
    GenerateResult result;
    result.finish_reason = FinishReason::cancelled;
    result.usage.prompt_tokens = static_cast<std::int64_t>(request->prompt.ids.size());
    result.usage.image_tokens = request->prompt.image_tokens;
    result.usage.video_tokens = request->prompt.video_tokens;
    if (final_round && !cancel_ids.count(request->id)) {
      if (request->callbacks.on_error) {
        request->callbacks.on_error(
            Error({ErrorKind::unavailable, "", "", "", "", "the scheduler shut down before the request started"}));
      }
    } else if (request->callbacks.on_done) {
      request->callbacks.on_done(result);
    }
  }
  for (auto& request : newly) admit(std::move(request));
  for (Slot& slot : slots) {
    if (!slot.busy()) continue;
    if (final_round || cancel_ids.count(slot.request->id)) {
      if (slot.sequence) slot.sequence->stop(FinishReason::cancelled);
      complete(slot);
    }
  }
  if (final_round) {
    publish_stats();
    return false;
  }
  prefill_one();
  decode_step();
  publish_stats();
  std::lock_guard lock(mutex);
  const bool any_busy = std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy(); });
  return !(stopping && !any_busy && queue.empty());
}

// Routes `request` to a free slot: the one whose cache it continues (the common prefix
// covers at least half of what the slot holds: a follow-up turn) with the longest prefix;
// otherwise an empty slot; otherwise the least recently used one. Half, not any prefix:
// every prompt shares the chat template's first tokens, and taking a slot for them would
// throw away another conversation's cache for a few tokens. Whatever prefix the chosen
// slot shares is reused either way.
void Scheduler::State::admit(std::unique_ptr<Request> request) {
  Slot* best = nullptr;
  std::int64_t best_prefix = 0;
  bool best_continues = false;
  for (Slot& slot : slots) {
    if (slot.busy()) continue;
    const std::int64_t prefix = slot.cached.common_prefix(request->prompt);
    const bool continues = prefix > 0 && 2 * prefix >= slot.cached.size();
    bool better = best == nullptr || (continues && (!best_continues || prefix > best_prefix));
    if (!better && !continues && !best_continues) {
      const bool empty = slot.cached.size() == 0, best_empty = best->cached.size() == 0;
      better = empty != best_empty ? empty : slot.last_used < best->last_used;
    }
    if (better) {
      best = &slot;
      best_prefix = prefix;
      best_continues = continues;
    }
  }
  best->cached.truncate(best_prefix);
  best->reused = best_prefix;
  best->request = std::move(request);
  best->sequence.reset();
  best->admitted = ++admissions;
  best->prefill_start = Clock::now();
  best->prefill_end = {};
}

void Scheduler::State::prefill_one() {
  Slot* next = nullptr;
  for (Slot& slot : slots) {
    if (slot.prefilling() && (next == nullptr || slot.admitted < next->admitted)) next = &slot;
  }
  if (next == nullptr) return;
  Slot& slot = *next;
  Request& request = *slot.request;
  const auto index = static_cast<std::int64_t>(&slot - slots.data());
  const auto total = static_cast<std::int64_t>(request.prompt.ids.size());
  const std::int64_t start = slot.cached.size();
  const std::int64_t end = std::min(total, start + options.prefill_chunk_tokens);
  try {
    const auto logits = runtime::prefill_chunk(runner, pool.slot(index), request.prompt, start, end);
    slot.cached.append_prompt(request.prompt, start, end);
    if (end < total) return;
    slot.prefill_end = Clock::now();
    slot.sequence.emplace(parts, request.options, request.prompt.ids, request.max_new);
    if (!slot.sequence->step(logits, request.callbacks.on_token)) complete(slot);
  } catch (const std::exception& e) {
    fail(slot, as_error(e));
  }
}

void Scheduler::State::decode_step() {
  std::int64_t first = -1, last = -1;
  for (std::size_t s = 0; s < slots.size(); ++s) {
    if (!slots[s].decoding()) continue;
    if (first < 0) first = static_cast<std::int64_t>(s);
    last = static_cast<std::int64_t>(s);
  }
  if (first < 0) return;
  const std::int64_t count = last - first + 1;
  step_ids.assign(static_cast<std::size_t>(count), 0);
  step_positions.assign(static_cast<std::size_t>(3 * count), 0);
  step_past.assign(static_cast<std::size_t>(count), 0);
  for (std::int64_t r = 0; r < count; ++r) {
    const Slot& slot = slots[static_cast<std::size_t>(first + r)];
    const auto i = static_cast<std::size_t>(r);
    step_past[i] = slot.cached.size();  // riding-along rows: a dummy row there, not kept
    if (!slot.decoding()) continue;
    step_ids[i] = slot.sequence->last_token();
    const std::int64_t position = vision::decode_position(slot.cached.size(), slot.request->prompt.positions.rope_delta);
    for (int k = 0; k < 3; ++k) step_positions[static_cast<std::size_t>(k * count + r)] = position;
  }
  std::span<const float> logits;
  try {
    runner.embed(step_ids, step_embeds);
    logits = runner.run(pool.range(first, count),
                        runtime::DecoderBatch{count, step_embeds, {}, step_positions, step_past});
  } catch (const std::exception& e) {
    const Error error = as_error(e);
    for (std::int64_t r = 0; r < count; ++r) {
      Slot& slot = slots[static_cast<std::size_t>(first + r)];
      if (slot.decoding()) fail(slot, error);
    }
    return;
  }
  {
    std::lock_guard lock(mutex);
    ++stats.decode_steps_total;
  }
  const auto vocab = static_cast<std::size_t>(parts.manifest.vocab_size);
  for (std::int64_t r = 0; r < count; ++r) {
    Slot& slot = slots[static_cast<std::size_t>(first + r)];
    if (!slot.decoding()) continue;
    const auto i = static_cast<std::size_t>(r);
    slot.cached.append_generated(step_ids[i], step_positions[i]);
    try {
      if (!slot.sequence->step(logits.subspan(i * vocab, vocab), slot.request->callbacks.on_token)) complete(slot);
    } catch (const std::exception& e) {
      fail(slot, as_error(e));
    }
  }
}

void Scheduler::State::complete(Slot& slot) {
  const auto now = Clock::now();
  Request& request = *slot.request;
  GenerateResult result;
  if (slot.sequence) {
    result = std::move(slot.sequence->result());
  } else {
    result.finish_reason = FinishReason::cancelled;  // cancelled during its prefill
  }
  const auto prompt_tokens = static_cast<std::int64_t>(request.prompt.ids.size());
  result.usage.prompt_tokens = prompt_tokens;
  result.usage.completion_tokens = static_cast<std::int64_t>(result.token_ids.size());
  result.usage.cached_tokens = slot.reused;
  result.usage.image_tokens = request.prompt.image_tokens;
  result.usage.video_tokens = request.prompt.video_tokens;
  Timings& tm = result.timings;
  tm.vision_ms = request.vision.ms;
  if (slot.prefill_end > slot.prefill_start) {
    tm.prefill_ms = ms_between(slot.prefill_start, slot.prefill_end);
    tm.prefill_tokens_per_s = 1000.0 * static_cast<double>(prompt_tokens - slot.reused) / tm.prefill_ms;
  }
  if (slot.sequence && !result.token_ids.empty()) {
    const auto first = slot.sequence->first_token_time();
    tm.ttft_ms = ms_between(request.submitted, first);
    tm.decode_ms = ms_between(first, now);
    tm.decode_tokens_per_s =
        tm.decode_ms > 0 ? 1000.0 * static_cast<double>(result.token_ids.size() - 1) / tm.decode_ms : 0.0;
  }
  tm.total_ms = ms_between(request.submitted, now);
  {
    std::lock_guard lock(mutex);
    stats.prompt_tokens_total += prompt_tokens;
    stats.completion_tokens_total += result.usage.completion_tokens;
    stats.cached_prompt_tokens_total += slot.reused;
  }
  const RequestCallbacks callbacks = std::move(request.callbacks);
  slot.request.reset();
  slot.sequence.reset();
  slot.last_used = now;
  if (callbacks.on_done) callbacks.on_done(result);
}

void Scheduler::State::fail(Slot& slot, const Error& error) {
  // The slot's rows may be half-written: forget them.
  slot.cached.clear();
  const RequestCallbacks callbacks = std::move(slot.request->callbacks);
  slot.request.reset();
  slot.sequence.reset();
  slot.last_used = Clock::now();
  if (callbacks.on_error) callbacks.on_error(error);
}

void Scheduler::State::publish_stats() {
  std::int64_t active = 0, used = 0;
  for (const Slot& slot : slots) {
    active += slot.busy() ? 1 : 0;
    used += slot.cached.size();
  }
  std::lock_guard lock(mutex);
  stats.active_slots = active;
  stats.kv_tokens_used = used;
}

Scheduler::Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options) {
  if (!model) throw_error(ErrorKind::usage, "", "model", "a loaded model", "null");
  check_options(options, *model);
  state_ = std::make_unique<State>(std::move(model), options);
  state_->thread = std::thread([state = state_.get()] { state->loop(); });
}

Scheduler::~Scheduler() { shutdown(std::chrono::milliseconds(0)); }

Scheduler::RequestId Scheduler::submit(std::vector<text::Message> conversation, GenerateOptions options,
                                       RequestCallbacks callbacks) {
  State& st = *state_;
  const SchedulerOptions& so = st.options;
  // Queue full: waiting + busy >= slots + max_queue (checked again when queueing).
  auto check_room = [&st, &so] {
    if (st.stopping) {
      throw_error(ErrorKind::unavailable, "", "scheduler", "a running scheduler", "it is shutting down");
    }
    if (static_cast<std::int64_t>(st.queue.size()) + st.stats.active_slots >= so.parallel + so.max_queue) {
      throw_error(ErrorKind::limit, "", "max_queue",
                  "at most " + std::to_string(so.max_queue) + " requests waiting for the " +
                      std::to_string(so.parallel) + " slots",
                  "a full queue");
    }
  };
  {
    std::lock_guard lock(st.mutex);
    check_room();
  }
  runtime::check_generate_options(options);
  auto request = std::make_unique<Request>();
  request->submitted = Clock::now();
  st.vision.collect(conversation, options, request->images, request->videos, request->vision);
  request->prompt = runtime::build_prompt(st.parts, conversation, options, request->images, request->videos);
  const auto prompt_tokens = static_cast<std::int64_t>(request->prompt.ids.size());
  if (prompt_tokens == 0) throw_error(ErrorKind::usage, "prompt", "", "at least one token", "an empty prompt");
  if (prompt_tokens + 1 > so.ctx_per_slot) {
    throw_error(ErrorKind::limit, "prompt", "ctx_per_slot",
                "a prompt of at most " + std::to_string(so.ctx_per_slot - 1) + " tokens (ctx_per_slot is " +
                    std::to_string(so.ctx_per_slot) + ", one token is left to generate)",
                std::to_string(prompt_tokens) + " tokens (" + std::to_string(request->prompt.image_tokens) +
                    " image, " + std::to_string(request->prompt.video_tokens) + " video)");
  }
  request->max_new = std::min(options.max_new_tokens, so.ctx_per_slot - prompt_tokens);
  request->options = std::move(options);
  request->callbacks = std::move(callbacks);
  RequestId id = 0;
  {
    std::lock_guard lock(st.mutex);
    check_room();
    id = request->id = st.next_id++;
    ++st.stats.requests_total;
    st.stats.vision_calls_total += request->vision.vision_calls;
    st.stats.vision_cache_hits_total += request->vision.cache_hits;
    st.queue.push_back(std::move(request));
    st.stats.queued = static_cast<std::int64_t>(st.queue.size());
  }
  st.wake.notify_one();
  return id;
}

void Scheduler::cancel(RequestId id) {
  {
    std::lock_guard lock(state_->mutex);
    state_->cancels.insert(id);
  }
  state_->wake.notify_one();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

const SchedulerOptions& Scheduler::options() const { return state_->options; }

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->stopping) {
      state_->stopping = true;
      state_->deadline = Clock::now() + grace;
    }
  }
  state_->wake.notify_one();
  std::lock_guard join(state_->join_mutex);
  if (state_->thread.joinable()) state_->thread.join();
}

}  // namespace q3vl
