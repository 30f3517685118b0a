#include "builder/genai_config.h"

#include <algorithm>

#include "builder/genai_embed_graph.h"
#include "builder/genai_vision_graph.h"
#include "io/decoder_io.h"
#include "io/embed_io.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

// Qwen3-VL has no tokens_per_second (its videos carry timestamps in the text); GenAI's
// qwen3_vl reads the key for video position ids, and GenAI takes no video input, so the
// value only has to be valid. 2 is the Qwen3-VL video processor's sampling rate.
constexpr std::int64_t kTokensPerSecond = 2;

io::Json onnx_session_options() {
  return io::Json{{"log_id", "onnxruntime-genai"}, {"provider_options", io::Json::array()}};
}

}  // namespace

io::Json genai_config_json(const ModelConfig& config, const TokenIds& tokens, const GenaiConfigOptions& options) {
  const TextConfig& t = config.text;
  const VisionConfig& v = config.vision;
  if (tokens.eos_token_ids.empty()) {
    throw_error(ErrorKind::config, "generation_config.json", "eos_token_id", "at least one end-of-sequence token id",
                "none");
  }
  if (v.out_hidden_size != t.hidden_size) {
    throw_error(ErrorKind::config, "config.json", "vision_config.out_hidden_size",
                "text_config.hidden_size (" + std::to_string(t.hidden_size) + ")", std::to_string(v.out_hidden_size));
  }
  const auto taps = static_cast<std::int64_t>(v.deepstack_visual_indexes.size());
  const std::int64_t width = t.hidden_size * (options.deepstack ? 1 + taps : 1);
  const std::int64_t context = t.max_position_embeddings;

  io::Json decoder;
  decoder["filename"] = options.decoder_file;
  decoder["session_options"] = onnx_session_options();
  decoder["head_size"] = t.head_dim;
  // GenAI sizes the inputs_embeds and image_features tensors it allocates by this (its
  // other uses are hidden_states / MTP IO, which this package has none of; the KV cache
  // is sized by head_size and num_key_value_heads), so it is the packed width.
  decoder["hidden_size"] = width;
  decoder["num_attention_heads"] = t.num_attention_heads;
  decoder["num_hidden_layers"] = t.num_hidden_layers;
  decoder["num_key_value_heads"] = t.num_key_value_heads;
  decoder["inputs"] = io::Json{{"inputs_embeds", io::kDecoderInputsEmbeds},
                               {"attention_mask", io::kDecoderAttentionMask},
                               {"position_ids", io::kDecoderPositionIds},
                               {"past_key_names", "past_key_values.%d.key"},
                               {"past_value_names", "past_key_values.%d.value"}};
  decoder["outputs"] = io::Json{{"logits", io::kDecoderLogits},
                                {"present_key_names", "present.%d.key"},
                                {"present_value_names", "present.%d.value"}};

  io::Json embedding;
  embedding["filename"] = options.embedding_file;
  embedding["inputs"] = io::Json{{"input_ids", io::kEmbedInputIds}, {"image_features", kGenaiImageFeaturesInput}};
  embedding["outputs"] = io::Json{{"inputs_embeds", io::kEmbedInputsEmbeds}};

  io::Json vision;
  vision["filename"] = options.vision_file;
  vision["config_filename"] = kGenaiProcessorFileName;
  vision["spatial_merge_size"] = v.spatial_merge_size;
  vision["tokens_per_second"] = kTokensPerSecond;
  vision["patch_size"] = v.patch_size;
  // image_grid_thw must be named: GenAI's default name for the second input is image_sizes.
  vision["inputs"] = io::Json{{"pixel_values", kGenaiPixelValues}, {"image_grid_thw", kGenaiImageGridThw}};
  vision["outputs"] = io::Json{{"image_features", kGenaiImageFeatures}};

  io::Json model;
  model["type"] = "qwen3_vl";
  if (options.bos_token_id >= 0) model["bos_token_id"] = options.bos_token_id;
  model["context_length"] = context;
  model["eos_token_id"] = tokens.eos_token_ids.size() == 1 ? io::Json(tokens.eos_token_ids[0])
                                                           : io::Json(tokens.eos_token_ids);
  model["pad_token_id"] = tokens.pad_token_id >= 0 ? tokens.pad_token_id : tokens.eos_token_ids[0];
  model["image_token_id"] = config.image_token_id;
  model["video_token_id"] = config.video_token_id;
  model["vision_start_token_id"] = config.vision_start_token_id;
  model["vocab_size"] = t.vocab_size;
  model["decoder"] = decoder;
  model["embedding"] = embedding;
  model["vision"] = vision;

  io::Json search;
  search["diversity_penalty"] = 0.0;
  search["do_sample"] = false;
  search["early_stopping"] = true;
  search["length_penalty"] = 1.0;
  search["max_length"] = std::min(options.max_length, context);
  search["min_length"] = 0;
  search["no_repeat_ngram_size"] = 0;
  search["num_beams"] = 1;
  search["num_return_sequences"] = 1;
  // One KV buffer of max_length per layer, bound as past and present: the decoder's
  // GroupQueryAttention appends in place and reads the lengths from attention_mask.
  search["past_present_share_buffer"] = true;
  search["repetition_penalty"] = 1.0;
  search["temperature"] = 1.0;
  search["top_k"] = 1;
  search["top_p"] = 1.0;

  io::Json j;
  j["model"] = model;
  j["search"] = search;
  return j;
}

io::Json genai_processor_json(const ModelConfig& config, const ImageProcessorConfig& image) {
  const VisionConfig& v = config.vision;
  auto operation = [](const char* name, const char* type, io::Json attrs) {
    io::Json op{{"name", name}, {"type", type}};
    if (!attrs.is_null()) op["attrs"] = std::move(attrs);
    return io::Json{{"operation", op}};
  };
  io::Json transforms = io::Json::array();
  transforms.push_back(operation("decode_image", "DecodeImage", io::Json{{"color_space", "RGB"}}));
  transforms.push_back(operation("convert_to_rgb", "ConvertRGB", nullptr));
  transforms.push_back(operation("resize", "Resize",
                                 io::Json{{"interpolation", "CUBIC"},
                                          {"smart_resize", 1},
                                          {"min_pixels", image.min_pixels},
                                          {"max_pixels", image.max_pixels},
                                          {"patch_size", v.patch_size},
                                          {"merge_size", v.spatial_merge_size}}));
  transforms.push_back(operation("rescale", "Rescale", io::Json{{"rescale_factor", image.rescale_factor}}));
  transforms.push_back(operation(
      "normalize", "Normalize",
      io::Json{{"mean", io::Json(image.image_mean)}, {"std", io::Json(image.image_std)}, {"qwen3_vl", 1}}));
  transforms.push_back(operation("patch_image", "PatchImage",
                                 io::Json{{"patch_size", v.patch_size},
                                          {"temporal_patch_size", v.temporal_patch_size},
                                          {"merge_size", v.spatial_merge_size}}));
  return io::Json{{"processor", io::Json{{"name", "qwen3_vl_image_processor"}, {"transforms", transforms}}}};
}

}  // namespace q3vl::builder
