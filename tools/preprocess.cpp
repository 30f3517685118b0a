// q3vl preprocess: one image, video or list of frame images -> pixel_values, grid_thw
// and placeholder count, as the model's processor config prescribes (q3vl/processor.h).
//
//   q3vl preprocess --model DIR (--image F | --video F | --frames F...) [--max-pixels N]
//                   [--min-pixels N] [--max-tokens N] [--npy OUT.npy] [--json]
//
// --json prints {"grid_thw": [[t, h, w]], "num_tokens": N, "ms": ..., ...} on stdout;
// --npy writes float32 pixel_values of HF's shape [rows, 3 * 2 * 16 * 16].
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "q3vl/error.h"
#include "q3vl/processor.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

struct PreprocessArgs {
  std::filesystem::path model;
  std::filesystem::path image;
  std::filesystem::path video;
  std::vector<std::filesystem::path> frames;
  std::int64_t max_pixels = 0;
  std::int64_t min_pixels = 0;
  std::int64_t max_tokens = 0;
  std::filesystem::path npy;
  std::string resample = "torch";
  std::string alpha = "drop";
  bool json = false;
};

// NumPy .npy format 1.0: magic, version, little-endian header length, a Python dict
// literal padded with spaces to a 64-byte boundary, then the raw little-endian data.
void write_npy(const std::filesystem::path& path, const VisionInput& input) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(input.rows) + ", " +
                       std::to_string(input.cols) + "), }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw_error(ErrorKind::io, path.string(), "cannot open for writing");
  const std::uint16_t length = static_cast<std::uint16_t>(header.size());
  const char preamble[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.write(preamble, 8);
  out.put(static_cast<char>(length & 0xFF)).put(static_cast<char>(length >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(input.pixel_values.data()),
            static_cast<std::streamsize>(input.pixel_values.size() * sizeof(float)));
  if (!out) throw_error(ErrorKind::io, path.string(), "write failed");
}

int run_preprocess(const PreprocessArgs& args) {
  const int sources = !args.image.empty() + !args.video.empty() + !args.frames.empty();
  if (sources != 1) {
    throw_error(ErrorKind::usage, "q3vl preprocess", "input", "exactly one of --image, --video, --frames",
                std::to_string(sources) + " given");
  }
  const ProcessorConfig config = load_processor_config(args.model);
  VisionRequest request;
  if (args.min_pixels > 0) request.min_pixels = args.min_pixels;
  if (args.max_pixels > 0) request.max_pixels = args.max_pixels;
  if (args.max_tokens > 0) request.max_tokens = args.max_tokens;
  request.resample = args.resample == "pillow" ? ResampleOrder::pillow : ResampleOrder::torch;
  DecodeOptions decode;
  decode.alpha = args.alpha == "white" ? AlphaMode::composite_white : AlphaMode::drop;

  const auto start = std::chrono::steady_clock::now();
  VisionInput input;
  if (!args.image.empty()) {
    input = preprocess_image(decode_image_file(args.image, decode), config.image, request);
  } else if (!args.video.empty()) {
    input = preprocess_video_file(args.video, config.video, request, decode.limits);
  } else {
    input = preprocess_image_sequence(args.frames, config.video, request, decode);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  if (!args.npy.empty()) write_npy(args.npy, input);
  const bool is_video = args.image.empty();
  if (args.json) {
    nlohmann::ordered_json doc;
    doc["grid_thw"] = {{input.grid_thw[0], input.grid_thw[1], input.grid_thw[2]}};
    doc["num_tokens"] = input.num_tokens;
    doc["ms"] = ms;
    doc["pixel_values_shape"] = {input.rows, input.cols};
    doc["resized"] = {input.resized_height, input.resized_width};
    if (is_video) {
      doc["frame_indices"] = input.frame_indices;
      doc["fps"] = input.fps;
      doc["timestamps"] = input.timestamps;
    }
    std::printf("%s\n", doc.dump().c_str());
  } else {
    std::printf("grid_thw: [[%lld, %lld, %lld]]  resized: %lldx%lld  tokens: %lld  pixel_values: [%lld, %lld]  %.1f ms\n",
                static_cast<long long>(input.grid_thw[0]), static_cast<long long>(input.grid_thw[1]),
                static_cast<long long>(input.grid_thw[2]), static_cast<long long>(input.resized_width),
                static_cast<long long>(input.resized_height), static_cast<long long>(input.num_tokens),
                static_cast<long long>(input.rows), static_cast<long long>(input.cols), ms);
    if (is_video) {
      std::printf("frames:");
      for (std::int64_t i : input.frame_indices) std::printf(" %lld", static_cast<long long>(i));
      std::printf("  (%.3f fps)\ntimestamps:", input.fps);
      for (const auto& t : input.timestamps) std::printf(" %s", t.c_str());
      std::printf("\n");
    }
  }
  return 0;
}

RunFunction setup_preprocess(CLI::App& command) {
  auto args = std::make_shared<PreprocessArgs>();
  command.add_option("--model", args->model, "Model or package directory (its processor config is used)")
      ->required();
  command.add_option("--image", args->image, "Image file (JPEG, PNG, WebP, GIF, BMP)");
  command.add_option("--video", args->video, "Video file (anything FFmpeg decodes)");
  command.add_option("--frames", args->frames, "Image files taken as the frames of one video (24 fps assumed)");
  command.add_option("--max-pixels", args->max_pixels, "Override the config's max_pixels (size.longest_edge)");
  command.add_option("--min-pixels", args->min_pixels, "Override the config's min_pixels (size.shortest_edge)");
  command.add_option("--max-tokens", args->max_tokens, "Cap the placeholder tokens of the image / video");
  command.add_option("--resample", args->resample, "torch (HF default, bit-exact) or pillow (slow processor)")
      ->check(CLI::IsMember({"torch", "pillow"}));
  command.add_option("--alpha", args->alpha, "drop (HF for paths) or white (composite, as PIL-based servers)")
      ->check(CLI::IsMember({"drop", "white"}));
  command.add_option("--npy", args->npy, "Write pixel_values as a float32 .npy");
  command.add_flag("--json", args->json, "Print one JSON object");
  return [args]() { return run_preprocess(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("preprocess", "Image/video -> pixel_values, grid_thw and placeholder count",
                         setup_preprocess);

}  // namespace q3vl::tools
