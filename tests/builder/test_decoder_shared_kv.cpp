// The decoder's KV cache can live in ONE buffer per layer bound both as past_key_values.N.*
// and as present.N.* (shape [B, kv_heads, max_length, head_dim]); GroupQueryAttention then
// appends in place, so a decode step copies no cache (docs/reference/onnxruntime.md). Prefill + decode
// through such shared buffers must equal one full pass.
#include <gtest/gtest.h>

#include <cmath>

#include "builder/graph.h"
#include "builder/text_decoder.h"
#include "builder/weight_reader.h"
#include "decoder_runner.h"
#include "io/decoder_io.h"
#include "io/safetensors.h"
#include "text_reference.h"

namespace q3vl::testing {
namespace {

TEST(DecoderSharedKv, InPlaceCacheEqualsFullPass) {
  const ModelConfig config = custom_text_config(false);
  const TextConfig& t = config.text;
  const auto dir = fresh_dir("decoder_shared_kv");
  write_text_checkpoint(dir / "ckpt", config, 5);
  builder::DecoderGraphOptions options;  // last-position logits, as packages use
  {
    auto checkpoint = io::Checkpoint::open(dir / "ckpt");
    builder::WeightReader reader(checkpoint, Progress::silent());
    builder::Graph g("decoder", dir / "decoder.onnx.data");
    builder::write_decoder_graph(g, reader, config, options);
    g.save(dir / "decoder.onnx");
  }
  runtime::SessionConfig session_config;
  session_config.intra_op_threads = 1;
  runtime::OrtSession session("decoder", dir / "decoder.onnx", session_config);

  constexpr std::int64_t kTokens = 9, kPrefill = 5, kMax = 16;
  const std::int64_t D = t.hidden_size, V = t.vocab_size, L = t.num_hidden_layers;
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  const auto embeds = random_floats(kTokens * D, 31, 1.0f);

  // Reference: one full pass per prefix length (last-position logits of each prefix).
  DecoderRunner runner(dir / "ckpt", fresh_dir("decoder_shared_kv_ref"), config, options);
  auto positions_for = [](std::int64_t begin, std::int64_t count) {
    std::vector<std::int64_t> p;
    for (int r = 0; r < 3; ++r) {
      for (std::int64_t s = begin; s < begin + count; ++s) p.push_back(s);
    }
    return p;
  };

  // One buffer per layer and kind, bound as both past and present.
  std::vector<std::vector<float>> cache(static_cast<std::size_t>(2 * L),
                                        std::vector<float>(static_cast<std::size_t>(t.num_key_value_heads * kMax * t.head_dim), 0.0f));
  const std::vector<std::int64_t> cache_shape{1, t.num_key_value_heads, kMax, t.head_dim};
  auto memory = cpu_memory();
  double max_diff = 0, max_ref = 0;
  std::int64_t done = 0;
  for (std::int64_t step_tokens : {kPrefill, std::int64_t{1}, std::int64_t{1}, std::int64_t{1}, std::int64_t{1}}) {
    Ort::IoBinding binding(session.session());
    HostF32 e{std::vector<float>(embeds.begin() + done * D, embeds.begin() + (done + step_tokens) * D), {1, step_tokens, D}};
    HostI64 p{positions_for(done, step_tokens), {3, 1, step_tokens}};
    HostI64 m{std::vector<std::int64_t>(static_cast<std::size_t>(done + step_tokens), 1), {1, done + step_tokens}};
    HostF32 ds{std::vector<float>(static_cast<std::size_t>(taps * step_tokens * D), 0.0f), {taps, 1, step_tokens, D}};
    Ort::Value ev = to_ort(e), pv = to_ort(p), mv = to_ort(m), dsv = to_ort(ds);
    binding.BindInput(io::kDecoderInputsEmbeds, ev);
    binding.BindInput(io::kDecoderPositionIds, pv);
    binding.BindInput(io::kDecoderAttentionMask, mv);
    binding.BindInput(io::kDecoderDeepstackEmbeds, dsv);
    std::vector<Ort::Value> views;
    for (std::int64_t i = 0; i < 2 * L; ++i) {
      views.push_back(Ort::Value::CreateTensor<float>(memory, cache[i].data(), cache[i].size(), cache_shape.data(), 4));
    }
    for (std::int64_t i = 0; i < L; ++i) {
      binding.BindInput(io::past_key_name(i).c_str(), views[2 * i]);
      binding.BindInput(io::past_value_name(i).c_str(), views[2 * i + 1]);
      binding.BindOutput(io::present_key_name(i).c_str(), views[2 * i]);
      binding.BindOutput(io::present_value_name(i).c_str(), views[2 * i + 1]);
    }
    binding.BindOutput(io::kDecoderLogits, memory);
    session.session().Run(Ort::RunOptions{nullptr}, binding);
    const auto logits = to_host(binding.GetOutputValues().back());  // bound last
    done += step_tokens;

    auto full = runner.run(1, done, std::vector<float>(embeds.begin(), embeds.begin() + done * D),
                           positions_for(0, done), {}, {});
    ASSERT_EQ(logits.data.size(), static_cast<std::size_t>(V));
    for (std::int64_t v = 0; v < V; ++v) {
      max_diff = std::max(max_diff, double(std::abs(logits.data[v] - full.logits.data[v])));
      max_ref = std::max(max_ref, double(std::abs(full.logits.data[v])));
    }
  }
  std::printf("[shared kv buffer] max|logit| %.3f, max|diff| vs full pass = %.3g\n", max_ref, max_diff);
  EXPECT_LE(max_diff, 1e-5 * std::max(1.0, max_ref));
}

}  // namespace
}  // namespace q3vl::testing
