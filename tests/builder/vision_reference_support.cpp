#include "builder/vision_reference_support.h"

#include <cmath>
#include <string>

#include "builder/vision_graph.h"
#include "io/safetensors.h"
#include "vision/grid_tables.h"

namespace q3vl::testing {
namespace {

// splitmix64: a tiny, well-mixed, portable generator.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }  // [0, 1)
  double normal() {                                                          // Box-Muller
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
};

struct Spec {
  std::string name;
  std::vector<std::int64_t> shape;
  enum Kind { matrix, bias, norm, table } kind;
  std::int64_t fan_in = 1;
};

std::vector<Spec> vision_specs(const VisionConfig& v) {
  const std::int64_t c = v.hidden_size;
  const std::int64_t grouped = c * v.spatial_merge_size * v.spatial_merge_size;
  const std::string t = "model.visual.";
  std::vector<Spec> specs = {
      {t + "patch_embed.proj.weight",
       {c, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size}, Spec::matrix,
       v.patch_input_size()},
      {t + "patch_embed.proj.bias", {c}, Spec::bias},
      {t + "pos_embed.weight", {v.num_position_embeddings, c}, Spec::table},
  };
  auto linear = [&](const std::string& path, std::int64_t in, std::int64_t out) {
    specs.push_back({path + ".weight", {out, in}, Spec::matrix, in});
    specs.push_back({path + ".bias", {out}, Spec::bias});
  };
  auto norm = [&](const std::string& path, std::int64_t width) {
    specs.push_back({path + ".weight", {width}, Spec::norm});
    specs.push_back({path + ".bias", {width}, Spec::bias});
  };
  for (std::int64_t b = 0; b < v.depth; ++b) {
    const std::string p = t + "blocks." + std::to_string(b);
    norm(p + ".norm1", c);
    norm(p + ".norm2", c);
    linear(p + ".attn.qkv", c, 3 * c);
    linear(p + ".attn.proj", c, c);
    linear(p + ".mlp.linear_fc1", c, v.intermediate_size);
    linear(p + ".mlp.linear_fc2", v.intermediate_size, c);
  }
  auto merger = [&](const std::string& p, std::int64_t norm_width) {
    norm(p + ".norm", norm_width);
    linear(p + ".linear_fc1", grouped, grouped);
    linear(p + ".linear_fc2", grouped, v.out_hidden_size);
  };
  merger(t + "merger", c);
  for (std::size_t j = 0; j < v.deepstack_visual_indexes.size(); ++j) {
    merger(t + "deepstack_merger_list." + std::to_string(j), grouped);
  }
  return specs;
}

}  // namespace

void write_random_vision_checkpoint(const std::filesystem::path& dir, const VisionConfig& vision,
                                    std::uint64_t seed) {
  const std::vector<Spec> specs = vision_specs(vision);
  std::vector<io::TensorSpec> tensor_specs;
  for (const Spec& s : specs) tensor_specs.push_back({s.name, io::DType::f32, s.shape});
  Rng rng{seed};
  std::size_t next = 0;
  io::write_checkpoint(dir, tensor_specs, 1ull << 40, [&](const io::TensorSpec& ts, const io::TensorSink& sink) {
    const Spec& s = specs[next++];
    std::vector<float> values(static_cast<std::size_t>(ts.byte_size() / sizeof(float)));
    for (float& value : values) {
      const double z = rng.normal();
      switch (s.kind) {
        case Spec::matrix: value = static_cast<float>(z * 2.0 / std::sqrt(double(s.fan_in))); break;
        case Spec::bias: value = static_cast<float>(0.1 * z); break;
        case Spec::norm: value = static_cast<float>(1.0 + 0.1 * z); break;
        case Spec::table: value = static_cast<float>(0.4 * z); break;
      }
    }
    sink(std::as_bytes(std::span<const float>(values)));
  });
}

std::vector<float> random_uniform(std::size_t count, std::uint64_t seed) {
  Rng rng{seed};
  std::vector<float> values(count);
  for (float& v : values) v = static_cast<float>(2.0 * rng.uniform() - 1.0);
  return values;
}

VisionRun run_vision_graph(runtime::OrtSession& session, const VisionConfig& vision,
                           std::span<const float> pixels, std::int64_t segments, std::int64_t h,
                           std::int64_t w) {
  const auto params = vision::GridTableParams::from_config(vision);
  vision::PosEmbedTaps taps = vision::compute_pos_embed_taps(h, w, params);
  vision::VisionRotary rotary = vision::compute_vision_rotary(h, w, params);
  const std::int64_t l = h * w;
  const std::int64_t p = vision.patch_input_size();
  auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<float> pixel_copy(pixels.begin(), pixels.end());
  const std::int64_t pixel_shape[] = {segments, l, p};
  const std::int64_t tap_shape[] = {l, 4};
  const std::int64_t rot_shape[] = {l, rotary.head_dim};
  std::vector<Ort::Value> inputs;
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, pixel_copy.data(), pixel_copy.size(), pixel_shape, 3));
  inputs.push_back(Ort::Value::CreateTensor<std::int64_t>(memory, taps.indices.data(), taps.indices.size(), tap_shape, 2));
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, taps.weights.data(), taps.weights.size(), tap_shape, 2));
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, rotary.cos.data(), rotary.cos.size(), rot_shape, 2));
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, rotary.sin.data(), rotary.sin.size(), rot_shape, 2));
  auto outputs = session.run({builder::kVisionPixelValues, builder::kVisionPosEmbedIndices,
                              builder::kVisionPosEmbedWeights, builder::kVisionRotaryCos,
                              builder::kVisionRotarySin},
                             inputs, {builder::kVisionMergedTokens, builder::kVisionDeepstackFeatures});
  VisionRun run;
  auto copy = [](const Ort::Value& value, std::vector<float>& data, std::vector<std::int64_t>& shape) {
    const auto info = value.GetTensorTypeAndShapeInfo();
    shape = info.GetShape();
    const float* begin = value.GetTensorData<float>();
    data.assign(begin, begin + info.GetElementCount());
  };
  copy(outputs[0], run.merged, run.merged_shape);
  copy(outputs[1], run.deepstack, run.deepstack_shape);
  return run;
}

}  // namespace q3vl::testing
