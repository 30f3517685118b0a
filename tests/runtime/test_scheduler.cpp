// The Scheduler (continuous batching) against references that do not batch:
//   - 8 golden conversations (text, images, multi-turn) submitted together at parallel 4 and
//     8 give each its solo q3vl::generate tokens and HF's greedy tokens, up to near-ties
//     (as in test_parity.cpp: compared up to and including the first step whose top-1/top-2
//     margin is below 2 * kLogitBound);
//   - a second turn reuses the first turn's KV rows and its image, and equals a fresh run;
//   - cancellation, queue and context limits, shutdown with requests in flight;
//   - logprobs against a double-precision log-softmax of DecoderRunner logits;
//   - seeded sampling equals the solo run whatever runs beside it;
//   - json_object output parses as one JSON object (nlohmann) for several seeds/temperatures;
//   - a forced tool call (tool_call_names) is one call in the chat template's format;
//   - GenerateOptions::media_limits refuse an image or video over them, naming it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <future>
#include <iterator>
#include <regex>
#include <map>
#include <mutex>
#include <thread>

#include "q3vl/scheduler.h"
#include "runtime/decoder_runner.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/runtime_fixture.h"
#include "runtime/vision_features.h"
#include "support/golden.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

constexpr float kLogitBound = 5e-4f;  // test_parity.cpp's FP32 bound

// Collects one request's callbacks; wait() returns its result (or throws its error).
struct Outcome {
  std::mutex mutex;
  std::condition_variable done;
  int calls = 0;  // on_done + on_error calls
  std::optional<GenerateResult> result;
  std::optional<Error> error;
  std::vector<TokenEvent> events;  // pieces copied into `texts`
  std::vector<std::string> texts;

  RequestCallbacks callbacks(std::function<bool(const TokenEvent&)> also = {}) {
    RequestCallbacks c;
    c.on_token = [this, also](const TokenEvent& e) {
      {
        std::lock_guard lock(mutex);
        events.push_back(e);
        texts.emplace_back(e.piece);
        events.back().piece = {};
      }
      return also ? also(e) : true;
    };
    c.on_done = [this](const GenerateResult& r) {
      std::lock_guard lock(mutex);
      ++calls;
      result = r;
      done.notify_all();
    };
    c.on_error = [this](const Error& e) {
      std::lock_guard lock(mutex);
      ++calls;
      error = e;
      done.notify_all();
    };
    return c;
  }
  std::size_t tokens_seen() {
    std::lock_guard lock(mutex);
    return events.size();
  }
  const GenerateResult& wait() {
    std::unique_lock lock(mutex);
    done.wait(lock, [this] { return calls > 0; });
    if (error) throw *error;
    return *result;
  }
};

// Ids equal up to and including the first near-tie step of `margins`.
void expect_same_tokens(const std::vector<std::int64_t>& got, const std::vector<std::int64_t>& want,
                        const std::vector<float>& margins, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t s = 0; s < want.size(); ++s) {
    ASSERT_EQ(got[s], want[s]) << what << " step " << s;
    if (margins[s] < 2 * kLogitBound) break;
  }
}

// Top-1 minus top-2 logit of each step, from logprobs (log-softmax keeps differences).
std::vector<float> margins_of(const GenerateResult& r) {
  std::vector<float> m;
  for (const TokenLogprobs& lp : r.logprobs) m.push_back(lp.top.at(0).logprob - lp.top.at(1).logprob);
  return m;
}

const std::vector<std::string> kEightCases = {"text_only",  "image_small", "image_odd",     "two_turn",
                                              "two_images", "image_wide",  "image_palette", "image_rgba"};

class Batched : public ::testing::TestWithParam<int> {};

TEST_P(Batched, GreedyEqualsSoloAndHf) {
  const int parallel = GetParam();
  const auto model = runtime_model("tiny");
  const GoldenSet set = GoldenSet::open();
  std::vector<GoldenCase> cases;
  for (const auto& name : kEightCases) cases.push_back(set.load_case(name));

  SchedulerOptions so;
  so.parallel = parallel;
  so.ctx_per_slot = 1024;
  so.prefill_chunk_tokens = 48;  // image prompts take several chunks between decode steps
  Scheduler scheduler(model, so);
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (const GoldenCase& c : cases) {
    GenerateOptions options = greedy_options(*model, c.model_i64("tiny", "greedy_ids").numel());
    options.top_logprobs = 2;
    outcomes.push_back(std::make_unique<Outcome>());
    scheduler.submit(golden_messages(c), options, outcomes.back()->callbacks());
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const GoldenCase& c = cases[i];
    const GenerateResult& batched = outcomes[i]->wait();
    GenerateOptions options = greedy_options(*model, c.model_i64("tiny", "greedy_ids").numel());
    options.top_logprobs = 2;
    const GenerateResult solo = generate(model, golden_messages(c), options);
    expect_same_tokens(batched.token_ids, solo.token_ids, margins_of(solo), c.name() + " vs solo");
    expect_same_tokens(batched.token_ids, c.model_i64("tiny", "greedy_ids").values,
                       c.model_f32("tiny", "greedy_margin").values, c.name() + " vs HF");
    EXPECT_EQ(batched.usage.prompt_tokens, c.input_i64("input_ids").numel()) << c.name();
    EXPECT_EQ(batched.usage.completion_tokens, static_cast<std::int64_t>(batched.token_ids.size()));
    EXPECT_EQ(batched.finish_reason, FinishReason::length);
    // The streamed pieces concatenate to the text; one event per token.
    std::string streamed;
    for (const auto& t : outcomes[i]->texts) streamed += t;
    EXPECT_EQ(streamed, batched.text) << c.name();
    EXPECT_EQ(outcomes[i]->events.size(), batched.token_ids.size());
  }
  const SchedulerStats st = scheduler.stats();
  EXPECT_EQ(st.requests_total, 8);
  EXPECT_EQ(st.active_slots, 0);
  EXPECT_EQ(st.queued, 0);
  // Batching happened: fewer decoder calls than tokens after the first of each request.
  std::int64_t decode_tokens = 0;
  for (const auto& o : outcomes) decode_tokens += o->result->usage.completion_tokens - 1;
  EXPECT_LT(st.decode_steps_total, decode_tokens);
  std::printf("[batched] parallel %d: %lld decoder steps for %lld decode tokens\n", parallel,
              static_cast<long long>(st.decode_steps_total), static_cast<long long>(decode_tokens));
}

INSTANTIATE_TEST_SUITE_P(Parallel, Batched, ::testing::Values(4, 8));

// The KV pool in float16 or int8 (a package built with --kv-cache float16 / int8): four
// requests decoded in one batch give the tokens each gives alone (same cache dtype; up to
// near-ties), and the pool holds what the rows need.
void expect_batched_equals_solo(const std::string& preset, const std::string& dtype, std::int64_t row_bytes) {
  const auto model = runtime_model(preset);
  ASSERT_EQ(model->manifest().kv_cache_dtype, dtype);
  const GoldenSet set = GoldenSet::open();
  const std::vector<std::string> names = {"text_only", "image_small", "two_turn", "image_odd"};
  SchedulerOptions so;
  so.parallel = 4;
  so.ctx_per_slot = 1024;
  so.prefill_chunk_tokens = 48;
  Scheduler scheduler(model, so);
  std::vector<std::unique_ptr<Outcome>> outcomes;
  std::vector<GoldenCase> cases;
  for (const auto& name : names) {
    cases.push_back(set.load_case(name));
    outcomes.push_back(std::make_unique<Outcome>());
    scheduler.submit(golden_messages(cases.back()), greedy_options(*model, 12), outcomes.back()->callbacks());
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const GenerateResult& batched = outcomes[i]->wait();
    GenerateOptions options = greedy_options(*model, 12);
    options.top_logprobs = 2;
    const GenerateResult solo = generate(model, golden_messages(cases[i]), options);
    expect_same_tokens(batched.token_ids, solo.token_ids, margins_of(solo), cases[i].name() + " vs solo");
  }
  EXPECT_EQ(scheduler.stats().kv_bytes,
            model->manifest().num_hidden_layers * 2 * 4 * 1024 * model->manifest().num_key_value_heads * row_bytes);
}

TEST(Scheduler, Float16KvPoolBatchedEqualsSolo) {
  const std::int64_t head_dim = runtime_model("tiny:kv16")->manifest().head_dim;
  expect_batched_equals_solo("tiny:kv16", "float16", 2 * head_dim);
}

// int8 rows: head_dim codes and a float16 scale per 32 values.
TEST(Scheduler, Int8KvPoolBatchedEqualsSolo) {
  const std::int64_t head_dim = runtime_model("tiny:kv8")->manifest().head_dim;
  expect_batched_equals_solo("tiny:kv8", "int8", head_dim + 2 * ((head_dim + 31) / 32));
}

TEST(Scheduler, SecondTurnReusesPrefixAndImage) {
  const GoldenCase c = GoldenSet::open().load_case("two_turn");
  const auto model = runtime_model("tiny");
  const auto full = golden_messages(c);  // user(image 1), assistant, user(image 2)
  SchedulerOptions so;
  so.parallel = 2;
  so.ctx_per_slot = 1024;
  Scheduler scheduler(model, so);
  const GenerateOptions options = greedy_options(*model, 16);
  Outcome first, other, second;
  scheduler.submit({full[0]}, options, first.callbacks());
  const GenerateResult& r1 = first.wait();
  EXPECT_EQ(r1.usage.cached_tokens, 0);
  // Another conversation in between takes the other slot (an empty one is preferred).
  scheduler.submit(golden_messages(GoldenSet::open().load_case("text_only")), options, other.callbacks());
  other.wait();
  scheduler.submit(full, options, second.callbacks());
  const GenerateResult& r2 = second.wait();
  // Routed to the first conversation's slot: its whole first prompt is reused.
  EXPECT_GE(r2.usage.cached_tokens, r1.usage.prompt_tokens);
  const GenerateResult fresh = generate(model, full, options);
  EXPECT_EQ(r2.token_ids, fresh.token_ids);
  EXPECT_EQ(r2.text, fresh.text);
  const SchedulerStats st = scheduler.stats();
  EXPECT_EQ(st.vision_calls_total, 2);       // image 1 once, image 2 once
  EXPECT_EQ(st.vision_cache_hits_total, 1);  // image 1 again in the second turn
  EXPECT_EQ(st.cached_prompt_tokens_total, r2.usage.cached_tokens);
}

// A long prompt is prefilled one chunk per loop iteration, each followed by a decode step
// of the streams already generating: they keep getting tokens while it is prefilled.
TEST(Scheduler, PrefillChunksInterleaveWithDecodeSteps) {
  const auto model = runtime_model("tiny");
  const GoldenSet set = GoldenSet::open();
  SchedulerOptions so;
  so.parallel = 2;
  so.ctx_per_slot = 1024;
  so.prefill_chunk_tokens = 8;
  Scheduler scheduler(model, so);
  std::atomic<int> a_tokens{0};
  std::atomic<int> a_tokens_at_b_first{-1};
  Outcome a, b;
  const auto b_messages = golden_messages(set.load_case("image_odd"));
  scheduler.submit(golden_messages(set.load_case("text_only")), greedy_options(*model, 300),
                   a.callbacks([&](const TokenEvent&) {
                     if (++a_tokens == 3) {  // A is generating: now the long prompt arrives
                       scheduler.submit(b_messages, greedy_options(*model, 2), b.callbacks([&](const TokenEvent&) {
                         if (a_tokens_at_b_first < 0) a_tokens_at_b_first = a_tokens.load();
                         return true;
                       }));
                     }
                     return true;
                   }));
  const GenerateResult& rb = b.wait();
  a.wait();
  const std::int64_t chunks = (rb.usage.prompt_tokens + so.prefill_chunk_tokens - 1) / so.prefill_chunk_tokens;
  ASSERT_GT(chunks, 8);
  // One decode step of A after every chunk of B (the last chunk's step also gives B's
  // first token, which comes first).
  EXPECT_GE(a_tokens_at_b_first.load() - 3, chunks - 1) << chunks << " chunks";
}

TEST(Scheduler, CancelStopsWithinOneStepAndFreesTheSlot) {
  const auto model = runtime_model("tiny");
  const auto messages = golden_messages(GoldenSet::open().load_case("text_only"));
  SchedulerOptions so;
  so.parallel = 1;
  so.ctx_per_slot = 512;
  Scheduler scheduler(model, so);
  // cancel() from inside on_token after the 3rd token: no 4th token is generated.
  Outcome a;
  std::promise<Scheduler::RequestId> id_promise;
  std::shared_future<Scheduler::RequestId> id = id_promise.get_future().share();
  int seen = 0;
  const auto id_a = scheduler.submit(messages, greedy_options(*model, 400), a.callbacks([&](const TokenEvent&) {
    if (++seen == 3) scheduler.cancel(id.get());
    return true;
  }));
  id_promise.set_value(id_a);
  const GenerateResult& ra = a.wait();
  EXPECT_EQ(ra.finish_reason, FinishReason::cancelled);
  EXPECT_EQ(ra.token_ids.size(), 3u);
  // on_token returning false (client gone) does the same.
  Outcome b;
  int b_seen = 0;
  scheduler.submit(messages, greedy_options(*model, 400), b.callbacks([&](const TokenEvent&) { return ++b_seen < 2; }));
  const GenerateResult& rb = b.wait();
  EXPECT_EQ(rb.finish_reason, FinishReason::cancelled);
  EXPECT_EQ(rb.token_ids.size(), 2u);
  // The single slot is free again: a new request runs to its end.
  Outcome c;
  scheduler.submit(messages, greedy_options(*model, 5), c.callbacks());
  EXPECT_EQ(c.wait().token_ids.size(), 5u);
  EXPECT_EQ(a.calls + b.calls + c.calls, 3);
  // Cancelling a finished or unknown id is ignored.
  scheduler.cancel(id_a);
  scheduler.cancel(987654);
  Outcome d;
  scheduler.submit(messages, greedy_options(*model, 2), d.callbacks());
  EXPECT_EQ(d.wait().token_ids.size(), 2u);
}

TEST(Scheduler, LimitsAreErrorsNamingTheField) {
  const auto model = runtime_model("tiny");
  const auto messages = golden_messages(GoldenSet::open().load_case("text_only"));  // 17 tokens
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 1;
  so.ctx_per_slot = 64;
  Scheduler scheduler(model, so);
  // The first request holds the only slot until released (its on_token blocks the loop).
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  Outcome first, second;
  bool once = false;
  scheduler.submit(messages, greedy_options(*model, 4), first.callbacks([&](const TokenEvent&) {
    if (!once) {
      once = true;
      started.set_value();
      released.wait();
    }
    return true;
  }));
  started.get_future().wait();
  scheduler.submit(messages, greedy_options(*model, 4), second.callbacks());  // waits in the queue
  try {
    Outcome third;
    scheduler.submit(messages, greedy_options(*model, 4), third.callbacks());
    ADD_FAILURE() << "a full queue must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::limit);
    EXPECT_EQ(e.info().field, "max_queue");
  }
  release.set_value();
  EXPECT_EQ(first.wait().token_ids.size(), 4u);
  EXPECT_EQ(second.wait().token_ids.size(), 4u);

  // A prompt that leaves no room to generate in a slot.
  text::Message long_user;
  long_user.role = "user";
  std::string words;
  for (int i = 0; i < 200; ++i) words += "w" + std::to_string(i) + " ";
  long_user.content = words;
  try {
    scheduler.submit({long_user}, greedy_options(*model, 4), {});
    ADD_FAILURE() << "a prompt over ctx_per_slot must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::limit);
    EXPECT_EQ(e.info().field, "ctx_per_slot");
    EXPECT_NE(std::string(e.what()).find("64"), std::string::npos) << e.what();
  }
  // max_new_tokens is cut to the slot's room: finish_reason length at ctx_per_slot.
  Outcome fill;
  scheduler.submit(messages, greedy_options(*model, 1000), fill.callbacks());
  const GenerateResult& rf = fill.wait();
  EXPECT_EQ(rf.finish_reason, FinishReason::length);
  EXPECT_EQ(rf.usage.prompt_tokens + rf.usage.completion_tokens, 64);
  // Bad options are usage errors naming the field.
  GenerateOptions bad = greedy_options(*model, 4);
  bad.top_logprobs = 21;
  try {
    scheduler.submit(messages, bad, {});
    ADD_FAILURE() << "top_logprobs 21 must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_EQ(e.info().field, "top_logprobs");
  }
  SchedulerOptions no_slots;
  no_slots.parallel = 0;
  EXPECT_THROW((Scheduler{model, no_slots}), Error);
}

TEST(Scheduler, ShutdownEndsEveryRequestExactlyOnce) {
  const auto model = runtime_model("tiny");
  const GoldenSet set = GoldenSet::open();
  SchedulerOptions so;
  so.parallel = 2;
  so.ctx_per_slot = 2048;
  so.max_queue = 8;
  auto scheduler = std::make_unique<Scheduler>(model, so);
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (const char* name : {"text_only", "image_small", "text_only", "image_odd", "two_turn"}) {
    outcomes.push_back(std::make_unique<Outcome>());
    scheduler->submit(golden_messages(set.load_case(name)), greedy_options(*model, 1500), outcomes.back()->callbacks());
  }
  // Wait until something is generating, then give a short grace.
  while (outcomes[0]->tokens_seen() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  scheduler->shutdown(std::chrono::milliseconds(20));
  try {
    scheduler->submit(golden_messages(set.load_case("text_only")), greedy_options(*model, 4), {});
    ADD_FAILURE() << "submit after shutdown must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unavailable);
  }
  int cancelled = 0, unavailable = 0;
  for (const auto& o : outcomes) {
    EXPECT_EQ(o->calls, 1);  // exactly one of on_done / on_error, already called
    if (o->result) {
      EXPECT_EQ(o->result->finish_reason, FinishReason::cancelled);
      ++cancelled;
    } else {
      ASSERT_TRUE(o->error.has_value());
      EXPECT_EQ(o->error->kind(), ErrorKind::unavailable);
      ++unavailable;
    }
  }
  EXPECT_GE(cancelled, 2);  // the two running ones (1500 tokens do not fit in 20 ms)
  scheduler.reset();        // the destructor after shutdown is a no-op
  EXPECT_EQ(cancelled + unavailable, 5);
}

// log_softmax in double of one logits row.
std::vector<double> log_softmax(std::span<const float> logits) {
  double max = -INFINITY;
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double total = 0;
  for (float v : logits) total += std::exp(static_cast<double>(v) - max);
  std::vector<double> out;
  for (float v : logits) out.push_back(static_cast<double>(v) - max - std::log(total));
  return out;
}

TEST(Scheduler, LogprobsEqualDoubleLogSoftmaxOfTheLogits) {
  const GoldenCase c = GoldenSet::open().load_case("image_small");
  const auto model = runtime_model("tiny");
  const auto messages = golden_messages(c);
  constexpr int kTop = 5;
  constexpr std::int64_t kSteps = 6;
  SchedulerOptions so;
  so.parallel = 2;
  so.ctx_per_slot = 512;
  Scheduler scheduler(model, so);
  GenerateOptions options = greedy_options(*model, kSteps);
  options.top_logprobs = kTop;
  Outcome o, neighbour;
  scheduler.submit(golden_messages(GoldenSet::open().load_case("text_only")), greedy_options(*model, 12),
                   neighbour.callbacks());
  scheduler.submit(messages, options, o.callbacks());
  const GenerateResult& r = o.wait();
  neighbour.wait();
  ASSERT_EQ(r.logprobs.size(), static_cast<std::size_t>(kSteps));

  // Reference: the same tokens through a plain DecoderRunner, batch 1.
  runtime::VisionCache cache(model->parts());
  runtime::VisionRunStats vs;
  std::vector<runtime::PromptMedium> images, videos;
  cache.collect(messages, options, images, videos, vs);
  const runtime::Prompt prompt = runtime::build_prompt(model->parts(), messages, options, images, videos);
  runtime::DecoderRunner runner(model->parts());
  runner.cache().reserve(static_cast<std::int64_t>(prompt.ids.size()) + kSteps);
  std::vector<float> logits;
  {
    const auto l = runtime::prefill(runner, prompt, 0, 1 << 20);
    logits.assign(l.begin(), l.end());
  }
  for (std::int64_t s = 0; s < kSteps; ++s) {
    const std::vector<double> ref = log_softmax(logits);
    const TokenLogprobs& got = r.logprobs[static_cast<std::size_t>(s)];
    const auto chosen = static_cast<std::size_t>(r.token_ids[static_cast<std::size_t>(s)]);
    EXPECT_NEAR(got.logprob, ref[chosen], 1e-4) << "step " << s;
    EXPECT_EQ(o.events[static_cast<std::size_t>(s)].logprob, got.logprob);
    ASSERT_EQ(got.top.size(), static_cast<std::size_t>(kTop));
    std::vector<std::size_t> order(ref.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + kTop + 1, order.end(),
                      [&ref](std::size_t a, std::size_t b) { return ref[a] > ref[b]; });
    for (int k = 0; k < kTop; ++k) {
      const auto ku = static_cast<std::size_t>(k);
      EXPECT_NEAR(got.top[ku].logprob, ref[order[ku]], 1e-4) << "step " << s << " rank " << k;
      // Same id unless the reference itself has a near-tie at this rank.
      const bool tie = (k > 0 && ref[order[ku - 1]] - ref[order[ku]] < 2 * kLogitBound) ||
                       ref[order[ku]] - ref[order[ku + 1]] < 2 * kLogitBound;
      if (!tie) {
        EXPECT_EQ(got.top[ku].token_id, static_cast<std::int64_t>(order[ku])) << "step " << s << " rank " << k;
      }
      if (k > 0) {
        EXPECT_GE(got.top[ku - 1].logprob, got.top[ku].logprob);
      }
    }
    EXPECT_EQ(got.top[0].token_id, r.token_ids[static_cast<std::size_t>(s)]);  // greedy = top 1
    const std::int64_t one[1] = {r.token_ids[static_cast<std::size_t>(s)]};
    std::vector<float> embeds;
    runner.embed(one, embeds);
    const std::int64_t p = vision::decode_position(runner.cache().length(), prompt.positions.rope_delta);
    const std::int64_t positions[3] = {p, p, p};
    const auto l = runner.run(embeds, {}, positions);
    logits.assign(l.begin(), l.end());
  }
}

TEST(Scheduler, SeededSamplingIgnoresNeighbours) {
  const auto model = runtime_model("tiny");
  const GoldenSet set = GoldenSet::open();
  const auto messages = golden_messages(set.load_case("image_odd"));
  GenerateOptions options = model->default_options();
  options.sampling.do_sample = true;
  options.sampling.temperature = 1.3f;
  options.sampling.top_k = 0;
  options.sampling.top_p = 0.95f;
  options.sampling.min_p = 0.0f;
  options.sampling.presence_penalty = 0.5f;
  options.sampling.frequency_penalty = 0.25f;
  options.sampling.repetition_penalty = 1.1f;
  options.sampling.seed = 4242;
  options.max_new_tokens = 20;
  options.stop_token_ids.clear();
  const GenerateResult solo = generate(model, messages, options);
  SchedulerOptions so;
  so.parallel = 4;
  so.ctx_per_slot = 512;
  Scheduler scheduler(model, so);
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < 4; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    GenerateOptions o = options;
    if (i % 2 == 1) o.sampling.seed = 100 + i;  // neighbours with other seeds
    scheduler.submit(i == 1 ? golden_messages(set.load_case("text_only")) : messages, o, outcomes.back()->callbacks());
  }
  EXPECT_EQ(outcomes[0]->wait().token_ids, solo.token_ids);
  EXPECT_EQ(outcomes[2]->wait().token_ids, solo.token_ids);
  EXPECT_NE(outcomes[3]->wait().token_ids, solo.token_ids);  // another seed, another draw
  outcomes[1]->wait();
}

TEST(Scheduler, JsonObjectOutputParses) {
  const auto model = runtime_model("tiny");
  const auto messages = golden_messages(GoldenSet::open().load_case("text_only"));
  SchedulerOptions so;
  so.parallel = 4;
  so.ctx_per_slot = 256;
  Scheduler scheduler(model, so);
  struct Run {
    std::uint64_t seed;
    float temperature;
  };
  const std::vector<Run> runs = {{1, 1.0f}, {2, 0.7f}, {3, 1.5f}, {4, 0.0f}};
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (const Run& run : runs) {
    GenerateOptions options = model->default_options();  // eos ids from generation_config.json
    options.sampling.do_sample = run.temperature > 0.0f;
    options.sampling.temperature = run.temperature;
    options.sampling.top_k = 0;
    options.sampling.top_p = 1.0f;
    options.sampling.seed = run.seed;
    // A random-weight model rambles inside strings: the budget makes the constraint
    // close the object in time (json_constraint.h), so the output must still parse.
    options.max_new_tokens = 40;
    options.json_object = true;
    outcomes.push_back(std::make_unique<Outcome>());
    scheduler.submit(messages, options, outcomes.back()->callbacks());
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const GenerateResult& r = outcomes[i]->wait();
    std::printf("[json_object] seed %llu temperature %.1f: %zu tokens, finish %s: %.120s\n",
                static_cast<unsigned long long>(runs[i].seed), runs[i].temperature, r.token_ids.size(),
                to_string(r.finish_reason), r.text.c_str());
    EXPECT_EQ(r.finish_reason, FinishReason::stop) << r.text;
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(r.text)) << r.text;
    EXPECT_TRUE(parsed.is_object()) << r.text;
  }
  // q3vl::generate (Chat) runs the same constraint.
  GenerateOptions options = model->default_options();
  options.sampling.seed = 9;
  options.max_new_tokens = 24;
  options.json_object = true;
  const GenerateResult r = generate(model, messages, options);
  EXPECT_EQ(r.finish_reason, FinishReason::stop) << r.text;
  EXPECT_TRUE(nlohmann::json::parse(r.text).is_object()) << r.text;
}

TEST(Scheduler, ForcedToolCallIsOneCallInTheTemplatesFormat) {
  const auto model = runtime_model("tiny");
  const auto messages = golden_messages(GoldenSet::open().load_case("text_only"));
  SchedulerOptions so;
  so.parallel = 2;
  so.ctx_per_slot = 256;
  Scheduler scheduler(model, so);
  // What the chat templates render for an assistant's call (tool_call_constraint.h).
  const std::regex call("<tool_call>\n\\{\"name\": \"(get_weather|get_time)\", \"arguments\": ([\\s\\S]*)\\}\n</tool_call>");
  for (const std::uint64_t seed : {0u, 1u}) {
    GenerateOptions options = model->default_options();
    options.sampling.do_sample = seed != 0;  // seed 0: greedy
    options.sampling.temperature = 1.0f;
    options.sampling.top_k = 0;
    options.sampling.top_p = 1.0f;
    options.sampling.seed = seed;
    options.max_new_tokens = 48;  // the budget closes the arguments in time
    options.tool_call_names = {"get_weather", "get_time"};
    Outcome outcome;
    scheduler.submit(messages, options, outcome.callbacks());
    const GenerateResult& r = outcome.wait();
    std::printf("[tool call] seed %llu: %zu tokens, finish %s: %.160s\n", static_cast<unsigned long long>(seed),
                r.token_ids.size(), to_string(r.finish_reason), r.text.c_str());
    EXPECT_EQ(r.finish_reason, FinishReason::stop) << r.text;
    std::smatch match;
    ASSERT_TRUE(std::regex_match(r.text, match, call)) << r.text;
    EXPECT_TRUE(nlohmann::json::parse(match[2].str()).is_object()) << r.text;
    EXPECT_EQ(model->token_bytes(r.token_ids.front()), "<tool_call>");  // the added token
  }
  GenerateOptions both = model->default_options();
  both.json_object = true;
  both.tool_call_names = {"f"};
  Outcome never;
  EXPECT_THROW(scheduler.submit(messages, both, never.callbacks()), Error);
}

TEST(Scheduler, MediaLimitsRefuseMediaOverThemNamingThem) {
  const auto model = runtime_model("tiny");
  SchedulerOptions so;
  so.parallel = 1;
  so.ctx_per_slot = 1024;
  Scheduler scheduler(model, so);
  const auto media = source_dir() / "tests" / "goldens" / "model" / "media";
  std::ifstream in(media / "small_120x64.png", std::ios::binary);
  text::ContentPart image{text::ContentPart::Type::image, "", {}};
  image.media.kind = text::MediaSource::Kind::bytes;
  image.media.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  text::ContentPart video{text::ContentPart::Type::video, "", {text::MediaSource::Kind::path, (media / "clip_96x72_25f.mov").string(), {}}};
  const text::ContentPart ask{text::ContentPart::Type::text, "Describe.", {}};
  struct Case {
    text::ContentPart medium;
    std::int64_t pixels;  // width x height from the file names
    std::string name;     // as GenerateOptions::media_limits documents
  };
  const std::vector<Case> cases = {{image, 120 * 64, "messages[1].content[1]"},
                                   {video, 96 * 72, (media / "clip_96x72_25f.mov").string()}};
  for (const Case& c : cases) {
    const std::vector<text::Message> messages = {
        {"system", std::string("Be brief."), {}, {}, {}, {}},
        {"user", std::vector<text::ContentPart>{ask, c.medium}, {}, {}, {}, {}}};
    GenerateOptions options = model->default_options();
    options.max_new_tokens = 2;
    options.media_limits.max_pixels = c.pixels - 1;
    Outcome refused;
    try {
      scheduler.submit(messages, options, refused.callbacks());
      ADD_FAILURE() << c.name << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::limit) << e.what();
      EXPECT_EQ(e.info().file, c.name) << e.what();
      EXPECT_EQ(e.info().field, "dimensions") << e.what();
    }
    // Served under a larger limit. (Not exactly at it: FFmpeg applies the bound to the
    // coded frame size, which codecs round up to whole macroblocks.)
    options.media_limits.max_pixels = 2 * c.pixels;
    Outcome served;
    scheduler.submit(messages, options, served.callbacks());
    EXPECT_GE(served.wait().usage.image_tokens + served.wait().usage.video_tokens, 1) << c.name;
    // Now in the vision cache: a request with the lower limit is still refused.
    options.media_limits.max_pixels = c.pixels - 1;
    Outcome again;
    EXPECT_THROW(scheduler.submit(messages, options, again.callbacks()), Error) << c.name;
  }
}

}  // namespace
}  // namespace q3vl::testing
