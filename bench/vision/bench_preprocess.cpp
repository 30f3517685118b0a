// Time of the image front end on one file, by stage and end to end: decode (libjpeg-turbo),
// smart_resize + uint8 bicubic resize, normalise + patchify, and the whole
// preprocess_image call the runtime makes. Compare with bench/vision/hf_preprocess.py
// on the same file (README.md here).
//
//   bench_vision_preprocess IMAGE.jpg [MODEL_OR_CONFIG_DIR] [--benchmark_* flags]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>

#include "q3vl/processor.h"
#include "vision/patchify.h"
#include "vision/resample.h"
#include "vision/smart_resize.h"

namespace {

std::string g_image;
std::string g_config_dir;

std::vector<std::uint8_t> file_bytes() {
  std::ifstream in(g_image, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

q3vl::ImageProcessorConfig config() {
  if (!g_config_dir.empty()) return q3vl::load_processor_config(g_config_dir).image;
  q3vl::ImageProcessorConfig c;  // Qwen3-VL's preprocessor_config.json values
  c.min_pixels = 65536;
  c.max_pixels = 16777216;
  c.patch_size = 16;
  c.image_mean = {0.5, 0.5, 0.5};
  c.image_std = {0.5, 0.5, 0.5};
  return c;
}

void BM_Decode(benchmark::State& state) {
  const auto bytes = file_bytes();
  for (auto _ : state) benchmark::DoNotOptimize(q3vl::decode_image(bytes, g_image));
}

void BM_Resize(benchmark::State& state) {
  const auto image = q3vl::decode_image(file_bytes(), g_image);
  const auto c = config();
  const auto size = q3vl::vision::smart_resize(image.height, image.width, c.patch_size * c.merge_size, c.min_pixels,
                                               c.max_pixels);
  state.SetLabel(std::to_string(image.width) + "x" + std::to_string(image.height) + " -> " +
                 std::to_string(size.width) + "x" + std::to_string(size.height));
  for (auto _ : state) {
    benchmark::DoNotOptimize(q3vl::vision::resize_bicubic(image, size.width, size.height));
  }
}

void BM_Patchify(benchmark::State& state) {
  const auto image = q3vl::decode_image(file_bytes(), g_image);
  const auto c = config();
  const auto size = q3vl::vision::smart_resize(image.height, image.width, c.patch_size * c.merge_size, c.min_pixels,
                                               c.max_pixels);
  const auto resized = q3vl::vision::resize_bicubic(image, size.width, size.height);
  q3vl::vision::PatchifyParams params;
  params.patch_size = c.patch_size;
  for (auto _ : state) {
    benchmark::DoNotOptimize(q3vl::vision::patchify({&resized, &resized}, params));
  }
}

void BM_EndToEnd(benchmark::State& state) {
  const auto bytes = file_bytes();
  const auto c = config();
  for (auto _ : state) {
    const auto input = q3vl::preprocess_image(q3vl::decode_image(bytes, g_image), c);
    benchmark::DoNotOptimize(input.pixel_values.data());
    state.counters["tokens"] = static_cast<double>(input.num_tokens);
  }
}

}  // namespace

BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_Resize)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_Patchify)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_EndToEnd)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE [CONFIG_DIR] [--benchmark_* flags]\n", argv[0]);
    return 2;
  }
  g_image = argv[1];
  if (argc > 2) g_config_dir = argv[2];
  benchmark::AddCustomContext("image", g_image);
  benchmark::AddCustomContext("hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
