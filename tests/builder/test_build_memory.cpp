// The builder's memory does not grow with what it has read (bench/moe/build-ram.md): after
// the vision and decoder graphs of tiny-moe are written, the memory-mapped checkpoint has
// almost no page left in this process's resident set (/proc/self/smaps), because every
// reader releases a tensor's pages once converted (release_checkpoint_pages). Before the
// vision reader did so, the whole vision tower stayed resident as file-backed RSS, which
// grew a 30B-A3B build's peak with every layer written after it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "builder/graph.h"
#include "builder/text_decoder.h"
#include "builder/vision_graph.h"
#include "builder/weight_reader.h"
#include "io/safetensors.h"
#include "ort_test_util.h"
#include "q3vl/config.h"
#include "q3vl/progress.h"

namespace q3vl::builder {
namespace {

// Resident kB of every mapping of `file` in this process.
std::int64_t resident_kb(const std::filesystem::path& file) {
  std::ifstream smaps("/proc/self/smaps");
  const std::string target = std::filesystem::canonical(file).string();
  std::string line;
  bool inside = false;
  std::int64_t total = 0;
  while (std::getline(smaps, line)) {
    if (line.empty()) continue;
    const bool header = line.find('-') < line.find(' ') && line.find(':') > line.find(' ');
    if (header) {
      inside = line.size() >= target.size() && line.compare(line.size() - target.size(), target.size(), target) == 0;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      std::istringstream fields(line.substr(4));
      std::int64_t kb = 0;
      fields >> kb;
      total += kb;
    }
  }
  return total;
}

TEST(BuildMemory, CheckpointPagesAreReleasedAfterEachGraph) {
  const auto dir = testing::checkpoint_dir("tiny-moe");
  const ModelConfig config = load_model_config(dir);
  const io::Checkpoint checkpoint = io::Checkpoint::open(dir);
  const auto file = dir / "model.safetensors";
  ASSERT_TRUE(std::filesystem::exists(file));
  std::uint64_t vision_bytes = 0;
  for (const auto& name : checkpoint.names()) {
    if (name.rfind("model.visual.", 0) == 0) vision_bytes += checkpoint.tensor(name).data.size();
  }
  // What may stay: the header's pages, the page or two a tensor shares with its
  // neighbours, what fault-around mapped next to the last read. Measured 2026-12-05:
  // 152 kB after the vision graph, 692 kB after the decoder (of a 59 MB file). Kept pages
  // would show as the vision tower's 872 kB, then as most of the 59 MB.
  const std::int64_t vision_bound_kb = 400, decoder_bound_kb = 2048;
  ASSERT_GT(static_cast<std::int64_t>(vision_bytes / 1024), 2 * vision_bound_kb);

  const auto out = testing::fresh_dir("build_memory");
  {
    Graph g("vision", out / "vision.onnx.data");
    write_vision_graph(g, checkpoint, config);
    g.save(out / "vision.onnx");
  }
  const std::int64_t after_vision = resident_kb(file);
  Progress progress("test", 0, ProgressUnit::bytes, ProgressMode::quiet);
  WeightReader weights(checkpoint, progress);
  {
    Graph g("decoder", out / "decoder.onnx.data");
    DecoderGraphOptions options;
    options.layers.precision = WeightPrecision::int4;
    options.layers.quant.block_size = 32;
    write_decoder_graph(g, weights, config, options);
    g.save(out / "decoder.onnx");
  }
  const std::int64_t after_decoder = resident_kb(file);
  std::printf("[build memory] checkpoint %lld kB (vision %llu kB); resident after vision %lld kB, after decoder %lld kB\n",
              static_cast<long long>(std::filesystem::file_size(file) / 1024),
              static_cast<unsigned long long>(vision_bytes / 1024), static_cast<long long>(after_vision),
              static_cast<long long>(after_decoder));
  EXPECT_LE(after_vision, vision_bound_kb);
  EXPECT_LE(after_decoder, decoder_bound_kb);
  EXPECT_LT(decoder_bound_kb * 1024 * 20, static_cast<std::int64_t>(std::filesystem::file_size(file)));
}

}  // namespace
}  // namespace q3vl::builder
