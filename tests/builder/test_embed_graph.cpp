// The embedding graph at each table precision against the checkpoint's own rows.
//   fp32: exact (the bf16 values widen exactly);
//   fp16: exact up to float16 rounding of each value (|err| <= 2^-11 |w| + 2^-25);
//   int8: every value within half a quantization step of the 32-value block it is in
//         (step <= max|w in block| / 127), through com.microsoft.GatherBlockQuantized.
// Cases: `tiny` (hidden 64, whole blocks) and `custom` (hidden 72: a last block of 8),
// ids at both ends of the table, the special tokens and seeded random ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "builder/embed_graph.h"
#include "builder/graph.h"
#include "builder/weight_reader.h"
#include "decoder_runner.h"
#include "io/safetensors.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

using builder::WeightPrecision;

std::vector<float> embed_rows(const std::filesystem::path& checkpoint_dir, const ModelConfig& config,
                              WeightPrecision precision, const std::vector<std::int64_t>& ids) {
  const auto dir = fresh_dir(std::string("embed-") + builder::to_string(precision) + "-" +
                             checkpoint_dir.filename().string());
  {
    const auto checkpoint = io::Checkpoint::open(checkpoint_dir);
    builder::WeightReader reader(checkpoint, Progress::silent());
    builder::Graph g("embed", dir / "embed.onnx.data");
    builder::write_embed_graph(g, reader, config, precision);
    g.save(dir / "embed.onnx");
  }
  runtime::OrtSession session("embed", dir / "embed.onnx");
  HostI64 input{ids, {1, static_cast<std::int64_t>(ids.size())}};
  std::vector<Ort::Value> in;
  in.push_back(to_ort(input));
  return to_host(session.run({builder::kEmbedInputIds}, in, {builder::kEmbedInputsEmbeds})[0]).data;
}

std::vector<std::int64_t> probe_ids(const ModelConfig& config) {
  std::vector<std::int64_t> ids{0, 1, 151643, 151644, 151645, 151652, 151653, 151655, 151656,
                                config.text.vocab_size - 1};
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::int64_t> any(0, config.text.vocab_size - 1);
  for (int i = 0; i < 40; ++i) ids.push_back(any(rng));
  return ids;
}

void check_checkpoint(const char* name) {
  SCOPED_TRACE(name);
  const auto path = checkpoint_dir(name);
  const ModelConfig config = load_model_config(path);
  const std::int64_t D = config.text.hidden_size;
  const auto table = io::Checkpoint::open(path).tensor("model.language_model.embed_tokens.weight").to_f32();
  const auto ids = probe_ids(config);

  const auto fp32 = embed_rows(path, config, WeightPrecision::fp32, ids);
  const auto fp16 = embed_rows(path, config, WeightPrecision::fp16, ids);
  const auto int8 = embed_rows(path, config, WeightPrecision::int8, ids);
  ASSERT_EQ(fp32.size(), ids.size() * static_cast<std::size_t>(D));
  ASSERT_EQ(int8.size(), fp32.size());
  double worst_int8_step_share = 0;
  for (std::size_t r = 0; r < ids.size(); ++r) {
    const float* want = table.data() + ids[r] * D;
    for (std::int64_t block = 0; block < D; block += 32) {
      const std::int64_t end = std::min(D, block + 32);
      float max_abs = 0;
      for (std::int64_t d = block; d < end; ++d) max_abs = std::max(max_abs, std::abs(want[d]));
      const double half_step = max_abs / 127.0 / 2.0;
      for (std::int64_t d = block; d < end; ++d) {
        const std::size_t at = r * static_cast<std::size_t>(D) + static_cast<std::size_t>(d);
        ASSERT_EQ(fp32[at], want[d]) << "id " << ids[r] << " dim " << d;
        ASSERT_LE(std::abs(fp16[at] - want[d]), std::abs(want[d]) * 0x1p-11 + 0x1p-25) << "id " << ids[r] << " dim " << d;
        const double err = std::abs(static_cast<double>(int8[at]) - want[d]);
        ASSERT_LE(err, half_step * (1 + 1e-6)) << "id " << ids[r] << " dim " << d << " block max " << max_abs;
        if (half_step > 0) worst_int8_step_share = std::max(worst_int8_step_share, err / (2 * half_step));
      }
    }
  }
  // Rounding, not truncation: some value sits near half a step off, none beyond.
  EXPECT_GT(worst_int8_step_share, 0.3);
}

TEST(EmbedGraph, EveryPrecisionReproducesTheTableRows) {
  check_checkpoint("tiny");
  check_checkpoint("custom");
}

TEST(EmbedGraph, Int4TableIsRefused) {
  const auto path = checkpoint_dir("tiny");
  const ModelConfig config = load_model_config(path);
  const auto checkpoint = io::Checkpoint::open(path);
  builder::WeightReader reader(checkpoint, Progress::silent());
  builder::Graph g("embed", fresh_dir("embed-int4") / "embed.onnx.data");
  EXPECT_THROW(builder::write_embed_graph(g, reader, config, WeightPrecision::int4), Error);
}

}  // namespace
}  // namespace q3vl::testing
