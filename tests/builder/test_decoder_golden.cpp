// Decoder parity with Hugging Face (committed goldens, tests/goldens/model): FP32 prefill
// logits given HF's inputs_embeds + position ids + DeepStack features, and greedy decoding
// through the embedding graph and the KV cache, on every golden case, tied and untied.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "builder/embed_graph.h"
#include "builder/graph.h"
#include "builder/weight_reader.h"
#include "decoder_runner.h"
#include "golden_inputs.h"
#include "q3vl/config.h"

namespace q3vl::testing {
namespace {

std::int64_t argmax(const float* v, std::int64_t n) { return std::max_element(v, v + n) - v; }

class EmbedRunner {
 public:
  EmbedRunner(const std::filesystem::path& checkpoint_dir, const std::filesystem::path& dir, const ModelConfig& config) {
    auto checkpoint = io::Checkpoint::open(checkpoint_dir);
    builder::WeightReader reader(checkpoint, Progress::silent());
    builder::Graph g("embed", dir / "embed.onnx.data");
    builder::write_embed_graph(g, reader, config, builder::WeightPrecision::fp32);
    g.save(dir / "embed.onnx");
    session_ = std::make_unique<runtime::OrtSession>("embed", dir / "embed.onnx");
  }
  std::vector<float> embed(std::int64_t id) {
    HostI64 ids{{id}, {1, 1}};
    std::vector<Ort::Value> in;
    in.push_back(to_ort(ids));
    return to_host(session_->run({builder::kEmbedInputIds}, in, {builder::kEmbedInputsEmbeds})[0]).data;
  }

 private:
  std::unique_ptr<runtime::OrtSession> session_;
};

void check_preset(const std::string& preset) {
  const GoldenSet set = GoldenSet::open();
  const ModelConfig config = load_model_config(checkpoint_dir(preset.c_str()));
  const auto dir = fresh_dir("golden_" + preset);
  DecoderRunner decoder(checkpoint_dir(preset.c_str()), dir, config, builder::DecoderGraphOptions{});
  EmbedRunner embed(checkpoint_dir(preset.c_str()), dir, config);
  const std::int64_t V = config.text.vocab_size;
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());

  for (const auto& name : set.case_names()) {
    const GoldenCase c = set.load_case(name);
    if (!c.has_model(preset, "prefill_logits")) continue;
    SCOPED_TRACE(preset + " / " + name);
    const auto in = load_golden_decoder_inputs(c, preset, taps, config.image_token_id, config.video_token_id);
    auto step = decoder.run(1, in.tokens, in.embeds, in.positions, in.deepstack, {});

    const GoldenF32 ref = c.model_f32(preset, "prefill_logits");
    ASSERT_EQ(static_cast<std::int64_t>(step.logits.data.size()), V);
    double max_ref = 0, max_diff = 0;
    for (std::int64_t v = 0; v < V; ++v) {
      max_ref = std::max(max_ref, double(std::abs(ref.values[v])));
      max_diff = std::max(max_diff, double(std::abs(ref.values[v] - step.logits.data[v])));
    }
    const double bound = 2e-4 * std::max(1.0, max_ref);
    EXPECT_LE(max_diff, bound) << "prefill logits, T=" << in.tokens;

    // Greedy decoding with the KV cache; compare ids up to the first step whose HF margin
    // (top-1 minus top-2 logit) is within our logit error, where a near-tie may flip.
    const GoldenI64 greedy = c.model_i64(preset, "greedy_ids");
    const GoldenF32 margin = c.model_f32(preset, "greedy_margin");
    std::vector<HostF32> cache = step.present;
    std::int64_t token = argmax(step.logits.data.data(), V);
    std::int64_t compared = 0;
    for (std::int64_t s = 0; s < greedy.numel(); ++s) {
      if (margin.values[s] <= 2 * bound) break;
      ASSERT_EQ(token, greedy.values[s]) << "greedy step " << s;
      ++compared;
      if (s + 1 == greedy.numel()) break;
      const std::int64_t position = in.tokens + s + in.rope_delta;  // HF: cache_position + rope_delta
      auto next = decoder.run(1, 1, embed.embed(token), {position, position, position}, {}, cache);
      cache = next.present;
      token = argmax(next.logits.data.data(), V);
    }
    std::printf("[hf parity %s/%s] T=%lld max|ref|=%.3f max|diff|=%.3g greedy steps matched=%lld\n",
                preset.c_str(), name.c_str(), static_cast<long long>(in.tokens), max_ref, max_diff,
                static_cast<long long>(compared));
    EXPECT_GE(compared, 1);
  }
}

TEST(DecoderGolden, Fp32MatchesHfTied) { check_preset("tiny"); }
TEST(DecoderGolden, Fp32MatchesHfUntied) { check_preset("tiny-untied"); }

}  // namespace
}  // namespace q3vl::testing
