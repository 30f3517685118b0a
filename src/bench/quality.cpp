// run_kl_eval(): the teacher-forced KL comparison of include/q3vl/quality.h.
#include <fstream>
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

// One model's side of the comparison: its runner and the logits of its last step.
struct Side {
  explicit Side(const std::shared_ptr<const Model>& m) : model(m), parts(m->parts()), runner(parts), vision(parts) {}
  std::shared_ptr<const Model> model;
  const runtime::ModelParts& parts;  // owned by *model
  runtime::DecoderRunner runner;
  runtime::VisionCache vision;
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
};

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

runtime::Prompt image_prompt(Side& side, const std::vector<text::Message>& conversation,
                             std::vector<runtime::PromptMedium>& images) {
  GenerateOptions options = side.model->default_options();
  std::vector<runtime::PromptMedium> videos;
  runtime::VisionRunStats stats;
  side.vision.clear();
  images.clear();
  side.vision.collect(conversation, options, images, videos, stats);
  return runtime::build_prompt(side.parts, conversation, options, images, videos);
}

}  // namespace

KlReport run_kl_eval(const std::filesystem::path& reference_dir, const std::filesystem::path& test_dir,
                     const ModelOptions& model_options, const KlOptions& options, const BenchProgress& progress) {
  check_options(options);
  auto say = [&](const std::string& label) {
    if (progress) progress(label);
  };
  KlReport report;
  report.machine = describe_machine();
  report.context = options.context;
  say("load " + reference_dir.string());
  Side ref(Model::load(reference_dir, model_options));
  say("load " + test_dir.string());
  Side test(Model::load(test_dir, model_options));
  report.reference = describe_package(*ref.model);
  report.test = describe_package(*test.model);
  if (ref.parts.manifest.vocab_size != test.parts.manifest.vocab_size) {
    throw_error(ErrorKind::config, test_dir.string(), "vocab_size", std::to_string(ref.parts.manifest.vocab_size),
                std::to_string(test.parts.manifest.vocab_size));
  }

  const std::vector<std::int64_t> ids = tokenize_file(ref.parts, options.text_file);
  report.text_tokens = static_cast<std::int64_t>(ids.size());
  const std::int64_t ctx = options.context;
  std::int64_t chunks = report.text_tokens / ctx;
  if (options.max_chunks > 0) chunks = std::min(chunks, options.max_chunks);
  if (chunks < 1) {
    throw_error(ErrorKind::limit, options.text_file.string(), "tokens", "at least one chunk of " + std::to_string(ctx),
                std::to_string(report.text_tokens));
  }
  if (ctx > ref.model->context_length()) {
    throw_error(ErrorKind::limit, "", "context", "at most " + std::to_string(ref.model->context_length()),
                std::to_string(ctx));
  }
  report.chunks = chunks;
  const std::int64_t first = ctx / 2;

  std::vector<bench::PositionKl> text_kl, image_kl;
  for (std::int64_t c = 0; c < chunks; ++c) {
    say("text chunk " + std::to_string(c + 1) + "/" + std::to_string(chunks));
    const std::span<const std::int64_t> chunk(ids.data() + c * ctx, static_cast<std::size_t>(ctx));
    // Prefill tokens [0, first]: the last logits predict chunk[first + 1].
    const runtime::Prompt prompt = text_prompt(chunk.subspan(0, static_cast<std::size_t>(first + 1)));
    ref.prefill(prompt, ctx);
    test.prefill(prompt, ctx);
    for (std::int64_t j = first; j <= ctx - 2; ++j) {
      text_kl.push_back(bench::compare_logits(ref.logits, test.logits));
      if (j == ctx - 2) break;
      const std::int64_t next = chunk[static_cast<std::size_t>(j + 1)];
      ref.step(next, j + 1);
      test.step(next, j + 1);
    }
  }

  const bool vision = ref.parts.vision.has_value() && test.parts.vision.has_value();
  const std::int64_t answer = std::min<std::int64_t>(options.answer_tokens, report.text_tokens);
  for (const BenchImageSize& size : vision ? options.images : std::vector<BenchImageSize>{}) {
    say("image " + std::to_string(size.width) + "x" + std::to_string(size.height));
    const std::vector<text::Message> conversation = {image_question(size)};
    std::vector<runtime::PromptMedium> ref_media, test_media;  // kept alive with the prompts
    const runtime::Prompt ref_prompt = image_prompt(ref, conversation, ref_media);
    const runtime::Prompt test_prompt = image_prompt(test, conversation, test_media);
    ref.prefill(ref_prompt, answer);
    test.prefill(test_prompt, answer);
    const auto length = static_cast<std::int64_t>(ref_prompt.ids.size());
    for (std::int64_t a = 0; a < answer; ++a) {
      image_kl.push_back(bench::compare_logits(ref.logits, test.logits));
      if (a == answer - 1) break;
      const std::int64_t position = vision::decode_position(length + a, ref_prompt.positions.rope_delta);
      ref.step(ids[static_cast<std::size_t>(a)], position);
      test.step(ids[static_cast<std::size_t>(a)], position);
    }
  }

  report.text = bench::summarize_kl(text_kl);
  report.images = bench::summarize_kl(image_kl);
  std::vector<bench::PositionKl> all = text_kl;
  all.insert(all.end(), image_kl.begin(), image_kl.end());
  report.all = bench::summarize_kl(all);
  return report;
}

}  // namespace q3vl
