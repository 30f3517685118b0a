// run_kl_eval(): the teacher-forced KL comparison of include/q3vl/quality.h.
#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include "bench/kl_divergence.h"
#include "bench/synthetic_image.h"
#include "q3vl/error.h"
#include "q3vl/quality.h"
#include "runtime/decoder_runner.h"
#include "runtime/model_parts.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/vision_features.h"

namespace q3vl {
namespace {

void check_options(const KlOptions& o) {
  if (o.context < 4) throw_error(ErrorKind::usage, "", "context", "integer >= 4", std::to_string(o.context));
  if (o.max_chunks < 0) throw_error(ErrorKind::usage, "", "max_chunks", "integer >= 0", std::to_string(o.max_chunks));
  if (o.answer_tokens < 1) {
    throw_error(ErrorKind::usage, "", "answer_tokens", "integer >= 1", std::to_string(o.answer_tokens));
  }
}

std::vector<std::int64_t> tokenize_file(const runtime::ModelParts& parts, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "", "a readable text file", "cannot open it");
  std::ostringstream text;
  text << in.rdbuf();
  text::EncodeOptions options;
  options.parse_special_tokens = false;  // the file is plain text, whatever it contains
  const auto ids = parts.tokenizer.encode(text.str(), options);
  return {ids.begin(), ids.end()};
}

// A text-only prompt: positions 0..n-1 on the three MRoPE axes.
runtime::Prompt text_prompt(std::span<const std::int64_t> ids) {
  const auto n = static_cast<std::int64_t>(ids.size());
  runtime::Prompt p;
  p.ids.assign(ids.begin(), ids.end());
  p.positions.length = n;
  p.positions.ids.resize(static_cast<std::size_t>(3 * n));
  for (int r = 0; r < 3; ++r) {
    for (std::int64_t i = 0; i < n; ++i) p.positions.ids[static_cast<std::size_t>(r * n + i)] = i;
  }
  p.visual.resize(ids.size());
  p.signature.assign(ids.begin(), ids.end());
  return p;
}

constexpr std::uint64_t kFnvOffset = 14695981039346656037ULL;

// FNV-1a over token ids: identifies the prompts a reference scored, so a test run can
// check that it scores the same ones.
void fingerprint_ids(std::uint64_t& h, std::span<const std::int64_t> ids) {
  for (const std::int64_t id : ids) {
    const auto v = static_cast<std::uint64_t>(id);
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFFu;
      h *= 1099511628211ULL;
    }
  }
}

text::Message image_question(const BenchImageSize& size) {
  text::ContentPart image;
  image.type = text::ContentPart::Type::image;
  image.media.kind = text::MediaSource::Kind::bytes;
  image.media.bytes = bench::synthetic_bmp(size.width, size.height);
  text::ContentPart question;
  question.text = "Describe this image in detail.";
  text::Message user;
  user.role = "user";
  user.content = std::vector<text::ContentPart>{image, question};
  return user;
}

using LogitsSink = std::function<void(std::span<const float>)>;

// One model's side of the comparison: it produces the logits of every scored position,
// in order, for the caller to record or compare.
struct Side {
  explicit Side(const std::shared_ptr<const Model>& m)
      : model(m), parts(m->parts()), runner(parts), vision(parts), all_logits(parts.manifest.logits_mode == "all") {}
  std::shared_ptr<const Model> model;
  const runtime::ModelParts& parts;  // owned by *model
  runtime::DecoderRunner runner;
  runtime::VisionCache vision;
  const bool all_logits;
  std::vector<float> logits, embeds;

  void prefill(const runtime::Prompt& prompt, std::int64_t extra) {
    runner.cache().reserve(static_cast<std::int64_t>(prompt.ids.size()) + extra);
    runner.cache().set_length(0);
    const auto out = runtime::prefill(runner, prompt, 0, parts.options.prefill_chunk_tokens);
    logits.assign(out.begin(), out.end());
  }
  // Feeds a text token at MRoPE position (p, p, p).
  void step(std::int64_t id, std::int64_t position) {
    const std::int64_t one[1] = {id};
    const std::int64_t positions[3] = {position, position, position};
    runner.embed(one, embeds);
    const auto out = runner.run(embeds, {}, positions);
    logits.assign(out.begin(), out.end());
  }

  // The logits at positions first .. ctx-2 of `chunk` (each predicting the next token),
  // from an empty cache.
  void score_chunk(std::span<const std::int64_t> chunk, std::int64_t first, const LogitsSink& sink) {
    const auto ctx = static_cast<std::int64_t>(chunk.size());
    if (all_logits) {  // tokens 0 .. ctx-2 in one call; row j predicts token j + 1
      const runtime::Prompt prompt = text_prompt(chunk.subspan(0, static_cast<std::size_t>(ctx - 1)));
      runner.cache().reserve(ctx);
      runner.cache().set_length(0);
      runner.embed(prompt.ids, embeds);
      runner.run(embeds, {}, prompt.positions.ids);
      const std::span<const float> all = runner.all_logits();
      const auto vocab = static_cast<std::size_t>(parts.manifest.vocab_size);
      for (std::int64_t j = first; j <= ctx - 2; ++j) sink(all.subspan(static_cast<std::size_t>(j) * vocab, vocab));
      return;
    }
    // Prefill tokens [0, first]: the last logits predict chunk[first + 1].
    prefill(text_prompt(chunk.subspan(0, static_cast<std::size_t>(first + 1))), ctx);
    for (std::int64_t j = first; j <= ctx - 2; ++j) {
      sink(logits);
      if (j == ctx - 2) break;
      step(chunk[static_cast<std::size_t>(j + 1)], j + 1);
    }
  }

  // The logits at the answer positions of an image prompt (the prompt's last position,
  // then each teacher-forced answer token but the last); the prompt's ids go into `h`.
  void score_image(const BenchImageSize& size, std::span<const std::int64_t> answer, std::uint64_t& h,
                   const LogitsSink& sink) {
    const std::vector<text::Message> conversation = {image_question(size)};
    GenerateOptions options = model->default_options();
    std::vector<runtime::PromptMedium> images, videos;  // kept alive with the prompt
    runtime::VisionRunStats stats;
    vision.clear();
    vision.collect(conversation, options, images, videos, stats);
    const runtime::Prompt prompt = runtime::build_prompt(parts, conversation, options, images, videos);
    fingerprint_ids(h, prompt.ids);
    const auto n = static_cast<std::int64_t>(answer.size());
    prefill(prompt, n);
    const auto length = static_cast<std::int64_t>(prompt.ids.size());
    for (std::int64_t a = 0; a < n; ++a) {
      sink(logits);
      if (a == n - 1) break;
      step(answer[static_cast<std::size_t>(a)], vision::decode_position(length + a, prompt.positions.rope_delta));
    }
  }
};

// How many whole chunks of the text are scored. Throws limit errors naming the file.
std::int64_t scored_chunks(std::int64_t text_tokens, const KlOptions& options) {
  std::int64_t chunks = text_tokens / options.context;
  if (options.max_chunks > 0) chunks = std::min(chunks, options.max_chunks);
  if (chunks < 1) {
    throw_error(ErrorKind::limit, options.text_file.string(), "tokens",
                "at least one chunk of " + std::to_string(options.context), std::to_string(text_tokens));
  }
  return chunks;
}

std::uint64_t text_fingerprint(const std::vector<std::int64_t>& ids, std::int64_t chunks, std::int64_t context) {
  std::uint64_t h = kFnvOffset;
  fingerprint_ids(h, std::span<const std::int64_t>(ids.data(), static_cast<std::size_t>(chunks * context)));
  return h;
}

std::string sizes_text(const std::vector<BenchImageSize>& sizes) {
  std::string text;
  for (const BenchImageSize& s : sizes) {
    text += (text.empty() ? "" : ",") + std::to_string(s.width) + "x" + std::to_string(s.height);
  }
  return text.empty() ? "none" : text;
}

// A test run must score the set the reference scored.
void check_same_set(const KlReference& r, const KlOptions& o) {
  auto mismatch = [](const char* field, const std::string& expected, const std::string& got) {
    throw_error(ErrorKind::usage, "reference logits", field, expected + " (what the reference was computed with)", got);
  };
  if (o.context != r.context) mismatch("context", std::to_string(r.context), std::to_string(o.context));
  if (o.answer_tokens != r.answer_tokens) {
    mismatch("answer_tokens", std::to_string(r.answer_tokens), std::to_string(o.answer_tokens));
  }
  const bool same_images =
      r.images.empty() || o.images.empty() ||  // "--image none": the text set alone
      std::equal(r.images.begin(), r.images.end(), o.images.begin(), o.images.end(),
                 [](const BenchImageSize& a, const BenchImageSize& b) { return a.width == b.width && a.height == b.height; });
  if (!same_images) mismatch("images", sizes_text(r.images), sizes_text(o.images));
}

std::int64_t answer_length(const KlOptions& options, std::int64_t text_tokens) {
  return std::min<std::int64_t>(options.answer_tokens, text_tokens);
}

}  // namespace

KlReference compute_kl_reference(const std::filesystem::path& reference_dir, const ModelOptions& model_options,
                                 const KlOptions& options, const BenchProgress& progress) {
  check_options(options);
  auto say = [&](const std::string& label) {
    if (progress) progress("reference: " + label);
  };
  say("load " + reference_dir.string());
  Side ref(Model::load(reference_dir, model_options));
  KlReference r;
  r.package = describe_package(*ref.model);
  r.context = options.context;
  r.answer_tokens = options.answer_tokens;
  r.vocab_size = ref.parts.manifest.vocab_size;
  const std::vector<std::int64_t> ids = tokenize_file(ref.parts, options.text_file);
  r.text_tokens = static_cast<std::int64_t>(ids.size());
  r.chunks = scored_chunks(r.text_tokens, options);
  if (options.context > ref.model->context_length()) {
    throw_error(ErrorKind::limit, "", "context", "at most " + std::to_string(ref.model->context_length()),
                std::to_string(options.context));
  }
  if (ref.parts.vision.present()) r.images = options.images;
  const std::int64_t first = r.context / 2;
  const std::int64_t answer = answer_length(options, r.text_tokens);
  r.text_positions = r.chunks * (r.context - 1 - first);
  const std::int64_t positions = r.text_positions + static_cast<std::int64_t>(r.images.size()) * answer;
  r.logits.reserve(static_cast<std::size_t>(positions * r.vocab_size));  // one allocation, no regrowth copies
  const LogitsSink keep = [&r](std::span<const float> l) { r.logits.insert(r.logits.end(), l.begin(), l.end()); };

  for (std::int64_t c = 0; c < r.chunks; ++c) {
    say("text chunk " + std::to_string(c + 1) + "/" + std::to_string(r.chunks));
    ref.score_chunk(std::span<const std::int64_t>(ids.data() + c * r.context, static_cast<std::size_t>(r.context)),
                    first, keep);
  }
  std::uint64_t h = text_fingerprint(ids, r.chunks, r.context);
  r.text_fingerprint = h;
  for (const BenchImageSize& size : r.images) {
    say("image " + std::to_string(size.width) + "x" + std::to_string(size.height));
    ref.score_image(size, std::span<const std::int64_t>(ids.data(), static_cast<std::size_t>(answer)), h, keep);
  }
  r.fingerprint = h;
  return r;
}

KlReport score_kl(const KlReference& r, const std::filesystem::path& test_dir, const ModelOptions& model_options,
                  const KlOptions& options, const BenchProgress& progress) {
  check_options(options);
  check_same_set(r, options);
  auto say = [&](const std::string& label) {
    if (progress) progress(label);
  };
  say("load " + test_dir.string());
  Side test(Model::load(test_dir, model_options));
  if (test.parts.manifest.vocab_size != r.vocab_size) {
    throw_error(ErrorKind::config, test_dir.string(), "vocab_size", std::to_string(r.vocab_size),
                std::to_string(test.parts.manifest.vocab_size));
  }
  const std::vector<std::int64_t> ids = tokenize_file(test.parts, options.text_file);
  const auto text_tokens = static_cast<std::int64_t>(ids.size());
  const std::int64_t chunks = scored_chunks(text_tokens, options);
  if (chunks != r.chunks) {
    throw_error(ErrorKind::usage, "reference logits", "chunks", std::to_string(r.chunks) + " (what the reference scored)",
                std::to_string(chunks));
  }
  std::uint64_t h = text_fingerprint(ids, chunks, r.context);
  if (text_tokens != r.text_tokens || h != r.text_fingerprint) {
    throw_error(ErrorKind::usage, options.text_file.string(), "text",
                "the text the reference was computed on (" + std::to_string(r.text_tokens) + " tokens)",
                "a different text (" + std::to_string(text_tokens) + " tokens)");
  }

  KlReport report;
  report.machine = describe_machine();
  report.reference = r.package;
  report.test = describe_package(*test.model);
  report.context = r.context;
  report.chunks = r.chunks;
  report.text_tokens = text_tokens;
  const auto vocab = static_cast<std::size_t>(r.vocab_size);
  std::size_t next = 0;
  std::vector<bench::PositionKl> text_kl, image_kl, *into = &text_kl;
  const LogitsSink compare = [&](std::span<const float> l) {
    if (next >= static_cast<std::size_t>(r.positions())) {
      throw_error(ErrorKind::usage, "reference logits", "positions", std::to_string(r.positions()), "more");
    }
    into->push_back(bench::compare_logits(std::span<const float>(r.logits.data() + next * vocab, vocab), l));
    ++next;
  };
  const std::int64_t first = r.context / 2;
  for (std::int64_t c = 0; c < chunks; ++c) {
    say("text chunk " + std::to_string(c + 1) + "/" + std::to_string(chunks));
    test.score_chunk(std::span<const std::int64_t>(ids.data() + c * r.context, static_cast<std::size_t>(r.context)),
                     first, compare);
  }
  if (!r.images.empty() && !options.images.empty() && test.parts.vision.present()) {
    into = &image_kl;
    const std::int64_t answer = answer_length(options, text_tokens);
    for (const BenchImageSize& size : r.images) {
      say("image " + std::to_string(size.width) + "x" + std::to_string(size.height));
      test.score_image(size, std::span<const std::int64_t>(ids.data(), static_cast<std::size_t>(answer)), h, compare);
    }
    if (h != r.fingerprint) {
      throw_error(ErrorKind::usage, test_dir.string(), "prompts",
                  "the prompts the reference scored (same text, image sizes and processor)", "different token ids");
    }
  }

  report.text = bench::summarize_kl(text_kl);
  report.images = bench::summarize_kl(image_kl);
  std::vector<bench::PositionKl> all = text_kl;
  all.insert(all.end(), image_kl.begin(), image_kl.end());
  report.all = bench::summarize_kl(all);
  return report;
}

KlReport run_kl_eval(const std::filesystem::path& reference_dir, const std::filesystem::path& test_dir,
                     const ModelOptions& model_options, const KlOptions& options, const BenchProgress& progress) {
  const KlReference reference = compute_kl_reference(reference_dir, model_options, options, progress);
  return score_kl(reference, test_dir, model_options, options, progress);
}

}  // namespace q3vl
