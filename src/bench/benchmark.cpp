// run_bench(): prefill, decode and image tests over one loaded package
// (include/q3vl/bench.h has what each test measures).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>

#include "bench/stats.h"
#include "bench/synthetic_image.h"
#include "q3vl/bench.h"
#include "q3vl/chat.h"
#include "q3vl/error.h"
#include "runtime/decoder_runner.h"
#include "runtime/model_parts.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/sampler.h"

namespace q3vl {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void check_options(const BenchOptions& o) {
  auto fail = [](const char* field, const std::string& expected, std::int64_t got) {
    throw_error(ErrorKind::usage, "", field, expected, std::to_string(got));
  };
  for (const std::int64_t p : o.prompt_tokens) {
    if (p < 0) fail("prompt_tokens", "every length >= 0", p);
  }
  if (o.decode_tokens < 0) fail("decode_tokens", "integer >= 0", o.decode_tokens);
  if (o.decode_tokens > 0 && o.decode_context < 1) fail("decode_context", "integer >= 1", o.decode_context);
  for (const BenchImageSize& s : o.images) {
    if (s.width < 1 || s.height < 1) fail("images", "sides >= 1", std::min(s.width, s.height));
  }
  if (o.repetitions < 1) fail("repetitions", "integer >= 1", o.repetitions);
  if (o.warmup < 0) fail("warmup", "integer >= 0", o.warmup);
}

void check_fits(const Model& model, const char* test, std::int64_t tokens) {
  if (tokens > model.context_length()) {
    throw_error(ErrorKind::limit, "", test, "at most " + std::to_string(model.context_length()) + " tokens (context)",
                std::to_string(tokens));
  }
}

// The lowest special-token id the manifest names: ids below it are ordinary text tokens
// (Qwen puts every special token after the BPE vocabulary).
std::int64_t first_special_id(const PackageManifest& m) {
  std::int64_t first = m.vocab_size;
  const TokenIds& t = m.tokens;
  for (const std::int64_t id : {t.image_token_id, t.video_token_id, t.vision_start_token_id, t.vision_end_token_id}) {
    if (id > 0) first = std::min(first, id);
  }
  for (const std::int64_t id : t.eos_token_ids) first = std::min(first, id);
  if (t.pad_token_id >= 0) first = std::min(first, t.pad_token_id);
  return first;
}

// A text-only prompt of `n` random ordinary token ids: positions 0..n-1 on all three
// MRoPE axes, as get_rope_index gives for text.
runtime::Prompt random_text_prompt(std::int64_t n, std::int64_t id_limit, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::int64_t> pick(0, id_limit - 1);
  runtime::Prompt prompt;
  prompt.ids.resize(static_cast<std::size_t>(n));
  for (auto& id : prompt.ids) id = pick(random);
  prompt.positions.length = n;
  prompt.positions.ids.resize(static_cast<std::size_t>(3 * n));
  for (int r = 0; r < 3; ++r) {
    for (std::int64_t i = 0; i < n; ++i) prompt.positions.ids[static_cast<std::size_t>(r * n + i)] = i;
  }
  prompt.visual.resize(static_cast<std::size_t>(n));
  prompt.signature.assign(prompt.ids.begin(), prompt.ids.end());
  return prompt;
}

// Runs `run` warmup times untimed, then repetitions times; returns the timed results.
template <typename Run>
auto repeat(const BenchOptions& o, const BenchProgress& progress, const std::string& label, Run run) {
  std::vector<decltype(run())> results;
  for (int i = 0; i < o.warmup + o.repetitions; ++i) {
    const bool warm = i < o.warmup;
    if (progress) {
      progress(label + (warm ? " (warm-up)" : " (rep " + std::to_string(i - o.warmup + 1) + "/" +
                                                  std::to_string(o.repetitions) + ")"));
    }
    auto r = run();
    if (!warm) results.push_back(std::move(r));
  }
  return results;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

text::Message image_message(const BenchImageSize& size) {
  text::ContentPart image;
  image.type = text::ContentPart::Type::image;
  image.media.kind = text::MediaSource::Kind::bytes;
  image.media.bytes = bench::synthetic_bmp(size.width, size.height);
  text::ContentPart prompt;
  prompt.text = "Describe this image in one sentence.";
  text::Message user;
  user.role = "user";
  user.content = std::vector<text::ContentPart>{image, prompt};
  return user;
}

}  // namespace

BenchReport run_bench(const std::filesystem::path& package_dir, const ModelOptions& model_options,
                      const BenchOptions& options, const BenchProgress& progress) {
  check_options(options);
  BenchReport report;
  report.started_utc = utc_now();
  report.machine = describe_machine();
  report.threads = model_options.intra_op_threads;
  report.spinning = model_options.allow_spinning;
  report.repetitions = options.repetitions;
  report.warmup = options.warmup;

  if (progress) progress("load " + package_dir.string());
  // With image workloads the vision session is created here, counted in load_ms: the
  // vision and TTFT figures time the encode, not session creation (llama.cpp's times
  // exclude loading mmproj too). A text-only run never creates it, as `q3vl run` would not.
  ModelOptions load_options = model_options;
  if (!options.images.empty()) load_options.preload_vision = true;
  const auto t_load = Clock::now();
  const auto model = Model::load(package_dir, load_options);
  report.load_ms = ms_since(t_load);
  report.package = describe_package(*model);
  const runtime::ModelParts& parts = model->parts();
  const std::int64_t id_limit = first_special_id(parts.manifest);
  const std::int64_t chunk = parts.options.prefill_chunk_tokens;

  runtime::DecoderRunner runner(parts);
  for (const std::int64_t p : options.prompt_tokens) {
    if (p == 0) continue;
    check_fits(*model, "prompt_tokens", p);
    const runtime::Prompt prompt = random_text_prompt(p, id_limit, options.seed + static_cast<std::uint64_t>(p));
    const auto ms = repeat(options, progress, "pp" + std::to_string(p), [&] {
      runner.cache().reserve(p);
      runner.cache().set_length(0);
      const auto t0 = Clock::now();
      runtime::prefill(runner, prompt, 0, chunk);
      return ms_since(t0);
    });
    BenchPrefill r;
    r.prompt_tokens = p;
    std::vector<double> rates;
    for (double m : ms) rates.push_back(1000.0 * static_cast<double>(p) / m);
    r.ms = bench::summarize(ms);
    r.tokens_per_s = bench::summarize(rates);
    report.prefill.push_back(std::move(r));
  }

  if (options.decode_tokens > 0) {
    const std::int64_t ctx = options.decode_context;
    const std::int64_t n = options.decode_tokens;
    check_fits(*model, "decode_context + decode_tokens", ctx + n);
    const runtime::Prompt prompt = random_text_prompt(ctx, id_limit, options.seed + 1000003);
    SamplingOptions greedy;
    greedy.do_sample = false;
    std::vector<float> embeds;
    const auto ms = repeat(options, progress, "tg" + std::to_string(n), [&] {
      runner.cache().reserve(ctx + n);
      runner.cache().set_length(0);
      std::span<const float> logits = runtime::prefill(runner, prompt, 0, chunk);
      runtime::Sampler sampler(greedy, parts.manifest.vocab_size);
      sampler.reset(prompt.ids);
      const auto t0 = Clock::now();
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t next[1] = {sampler.sample(logits)};
        sampler.accept(next[0]);
        const std::int64_t position = runner.cache().length();
        const std::int64_t positions[3] = {position, position, position};
        runner.embed(next, embeds);
        logits = runner.run(embeds, {}, positions);
      }
      return ms_since(t0);
    });
    BenchDecode r;
    r.context_tokens = ctx;
    r.tokens = n;
    // The mean of ctx + i + 1 over the steps i < n.
    const double mean_attended = static_cast<double>(ctx) + static_cast<double>(n + 1) / 2.0;
    r.read_bytes_per_token = static_cast<double>(report.package.decoder_weight_bytes) +
                             mean_attended * static_cast<double>(report.package.kv_bytes_per_token);
    std::vector<double> rates, bandwidth, read;
    for (double m : ms) {
      rates.push_back(1000.0 * static_cast<double>(n) / m);
      bandwidth.push_back(rates.back() * static_cast<double>(report.package.decoder_weight_bytes) / 1e9);
      read.push_back(rates.back() * r.read_bytes_per_token / 1e9);
    }
    r.tokens_per_s = bench::summarize(rates);
    r.weight_gb_per_s = bench::summarize(bandwidth);
    r.read_gb_per_s = bench::summarize(read);
    report.decode.push_back(std::move(r));
  }
  runner.cache().clear();

  if (report.package.has_vision) {
    GenerateOptions generate = model->default_options();
    generate.max_new_tokens = 1;
    generate.sampling = {};
    generate.sampling.do_sample = false;
    generate.stop_token_ids.clear();
    for (const BenchImageSize& size : options.images) {
      const std::vector<text::Message> conversation = {image_message(size)};
      const std::string name = std::to_string(size.width) + "x" + std::to_string(size.height);
      const auto runs = repeat(options, progress, "image " + name, [&] {
        Chat chat(model);  // a fresh vision cache: every run encodes the image
        return chat.generate(conversation, generate);
      });
      BenchImage r;
      r.size = size;
      r.image_tokens = runs.front().usage.image_tokens;
      r.prompt_tokens = runs.front().usage.prompt_tokens;
      std::vector<double> vision, ttft;
      for (const GenerateResult& g : runs) {
        vision.push_back(g.timings.vision_ms);
        ttft.push_back(g.timings.ttft_ms);
      }
      r.vision_ms = bench::summarize(vision);
      r.ttft_ms = bench::summarize(ttft);
      report.images.push_back(std::move(r));
    }
  }

  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  report.peak_rss_bytes = static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
  return report;
}

}  // namespace q3vl
