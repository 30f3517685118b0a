// config.json <-> ModelConfig. Field names, defaults and the rope layouts follow
// transformers' configuration_qwen3_vl.py and modeling_rope_utils.py (5.23);
// see include/q3vl/config.h for which missing fields are defaulted and why.
#include "q3vl/config.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>

#include "io/json_file.h"
#include "q3vl/error.h"

namespace q3vl {
namespace {

using io::Json;
using io::JsonObject;

// HF's Qwen3VLTextRotaryEmbedding falls back to this when rope parameters carry
// no mrope_section (modeling_qwen3_vl.py).
constexpr std::array<std::int64_t, 3> kDefaultMropeSection{24, 20, 20};

// Token ids of the Qwen3 tokenizer written into text_config as the Hub's files do.
constexpr std::int64_t kBosTokenId = 151643;  // <|endoftext|>
constexpr std::int64_t kEosTokenId = 151645;  // <|im_end|>

std::string text_field(const char* key) { return std::string("text_config.") + key; }
std::string vision_field(const char* key) { return std::string("vision_config.") + key; }

[[noreturn]] void fail(const std::string& file, const std::string& field, std::string expected,
                       std::string got) {
  throw_error(ErrorKind::config, file, field, std::move(expected), std::move(got));
}

void require_positive(const std::string& file, const std::string& field, std::int64_t value) {
  if (value <= 0) fail(file, field, "positive integer", std::to_string(value));
}

void require_positive(const std::string& file, const std::string& field, double value) {
  if (!(value > 0.0) || !std::isfinite(value)) {
    fail(file, field, "positive finite number", Json(value).dump());
  }
}

// Reads the rope dict of text_config the way HF's convert_rope_params_to_dict
// does: a truthy rope_scaling replaces rope_parameters; rope_theta comes from the
// dict, else from text_config itself; rope_type from "rope_type", else the
// legacy "type", else "default".
void read_text_rope(const JsonObject& text, TextConfig& out, ConfigLayout& layout) {
  std::optional<JsonObject> rope;
  if (text.has("rope_scaling") && !text.json()["rope_scaling"].empty()) {
    rope = text.object("rope_scaling");
    layout = ConfigLayout::rope_scaling;
  } else if (text.has("rope_parameters")) {
    rope = text.object("rope_parameters");
    layout = ConfigLayout::rope_parameters;
  } else {
    layout = ConfigLayout::rope_scaling;
  }

  if (rope && rope->has("rope_theta")) {
    out.rope_theta = rope->get_number("rope_theta");
  } else if (text.has("rope_theta")) {
    out.rope_theta = text.get_number("rope_theta");
  } else {
    // HF would fall back to 500000 (Qwen3VLTextConfig.default_theta), which is not
    // Qwen3-VL's 5000000: refuse to guess.
    // Name the place each layout keeps it. (An if, not a ?: between the two
    // calls: GCC 12 with -fsanitize=address,undefined -O2 evaluated the wrong arm.)
    std::string field;
    if (layout == ConfigLayout::rope_parameters) {
      field = rope->field_path("rope_theta");
    } else {
      field = text.field_path("rope_theta");
    }
    fail(text.file(), field, "number", "missing");
  }
  if (!rope) {
    out.mrope_section = kDefaultMropeSection;
    return;
  }
  out.rope_type = rope->get_string("rope_type", rope->get_string("type", "default"));
  const auto section = rope->get_int_array(
      "mrope_section", {kDefaultMropeSection.begin(), kDefaultMropeSection.end()});
  if (section.size() != 3) {
    rope->fail("mrope_section", "3 integers (T, H, W)",
               std::to_string(section.size()) + " integers");
  }
  std::copy(section.begin(), section.end(), out.mrope_section.begin());
  out.mrope_interleaved = rope->get_bool("mrope_interleaved", true);
}

// The expert fields of a qwen3_vl_moe text_config (see config.h for which are required).
void read_moe_fields(const JsonObject& text, TextConfig& out) {
  const bool legacy = text.has("num_experts");
  const bool local = text.has("num_local_experts");
  if (!legacy && !local) text.fail("num_experts", "integer (or num_local_experts)");
  out.num_experts = legacy ? text.get_int("num_experts") : text.get_int("num_local_experts");
  if (legacy && local && text.get_int("num_local_experts") != out.num_experts) {
    text.fail("num_local_experts", "num_experts (" + std::to_string(out.num_experts) + ")");
  }
  out.num_experts_per_tok = text.get_int("num_experts_per_tok");
  out.moe_intermediate_size = text.get_int("moe_intermediate_size");
  out.decoder_sparse_step = text.get_int("decoder_sparse_step", out.decoder_sparse_step);
  out.mlp_only_layers = text.get_int_array("mlp_only_layers", {});
  // norm_topk_prob is not read: the router renormalises regardless (config.h).
}

TextConfig read_text_config(const JsonObject& text, ConfigLayout& layout, bool moe) {
  TextConfig out;
  out.vocab_size = text.get_int("vocab_size");
  out.hidden_size = text.get_int("hidden_size");
  out.intermediate_size = text.get_int("intermediate_size");
  out.num_hidden_layers = text.get_int("num_hidden_layers");
  out.num_attention_heads = text.get_int("num_attention_heads");
  out.num_key_value_heads = text.get_int("num_key_value_heads", out.num_attention_heads);
  out.head_dim = text.get_int("head_dim");
  out.max_position_embeddings = text.get_int("max_position_embeddings");
  out.rms_norm_eps = text.get_number("rms_norm_eps", out.rms_norm_eps);
  out.hidden_act = text.get_string("hidden_act", out.hidden_act);
  out.attention_bias = text.get_bool("attention_bias", out.attention_bias);
  read_text_rope(text, out, layout);
  if (moe) read_moe_fields(text, out);
  return out;
}

VisionConfig read_vision_config(const JsonObject& vision) {
  VisionConfig out;
  out.depth = vision.get_int("depth");
  out.hidden_size = vision.get_int("hidden_size");
  out.intermediate_size = vision.get_int("intermediate_size");
  out.num_heads = vision.get_int("num_heads");
  out.out_hidden_size = vision.get_int("out_hidden_size");
  out.deepstack_visual_indexes = vision.get_int_array("deepstack_visual_indexes");
  out.in_channels = vision.get_int("in_channels", 3);
  out.patch_size = vision.get_int("patch_size", 16);
  out.temporal_patch_size = vision.get_int("temporal_patch_size", 2);
  out.spatial_merge_size = vision.get_int("spatial_merge_size", 2);
  out.num_position_embeddings = vision.get_int("num_position_embeddings", 2304);
  out.hidden_act = vision.get_string("hidden_act", out.hidden_act);
  if (const auto rope = vision.optional_object("rope_parameters")) {
    out.rope_theta = rope->get_number("rope_theta", out.rope_theta);
    // HF maps "default" to the vision tower's own "axial" and rejects anything else.
    const std::string type = rope->get_string("rope_type", "axial");
    if (type != "axial" && type != "default") {
      throw_error(ErrorKind::unsupported, vision.file(), rope->field_path("rope_type"),
                  "\"axial\" (Qwen3-VL's 2-D vision rotary)", "\"" + type + "\"");
    }
  }
  return out;
}

void validate_text(const TextConfig& t, ConfigLayout layout, const std::string& file) {
  const std::string rope_dict =
      layout == ConfigLayout::rope_parameters ? "rope_parameters." : "rope_scaling.";
  require_positive(file, text_field("vocab_size"), t.vocab_size);
  require_positive(file, text_field("hidden_size"), t.hidden_size);
  require_positive(file, text_field("intermediate_size"), t.intermediate_size);
  require_positive(file, text_field("num_hidden_layers"), t.num_hidden_layers);
  require_positive(file, text_field("num_attention_heads"), t.num_attention_heads);
  require_positive(file, text_field("num_key_value_heads"), t.num_key_value_heads);
  require_positive(file, text_field("head_dim"), t.head_dim);
  require_positive(file, text_field("max_position_embeddings"), t.max_position_embeddings);
  require_positive(file, text_field("rms_norm_eps"), t.rms_norm_eps);
  require_positive(file,
                   layout == ConfigLayout::rope_parameters ? text_field("rope_parameters.rope_theta")
                                                           : text_field("rope_theta"),
                   t.rope_theta);
  if (t.num_attention_heads % t.num_key_value_heads != 0) {
    fail(file, text_field("num_key_value_heads"),
         "a divisor of num_attention_heads (" + std::to_string(t.num_attention_heads) + ")",
         std::to_string(t.num_key_value_heads));
  }
  // rotate_half pairs dimension i with i + head_dim / 2.
  if (t.head_dim % 2 != 0) {
    fail(file, text_field("head_dim"), "even integer", std::to_string(t.head_dim));
  }
  if (t.hidden_act != "silu") {
    throw_error(ErrorKind::unsupported, file, text_field("hidden_act"), "\"silu\"",
                "\"" + t.hidden_act + "\"");
  }
  if (t.attention_bias) {
    throw_error(ErrorKind::unsupported, file, text_field("attention_bias"),
                "false (no Qwen3-VL checkpoint has attention biases)", "true");
  }
  if (t.rope_type != "default") {
    throw_error(ErrorKind::unsupported, file, text_field("") + rope_dict + "rope_type",
                "\"default\"", "\"" + t.rope_type + "\"");
  }

  const auto& s = t.mrope_section;
  const std::string section_field = text_field("") + rope_dict + "mrope_section";
  const std::string section_text = "[" + std::to_string(s[0]) + ", " + std::to_string(s[1]) +
                                   ", " + std::to_string(s[2]) + "]";
  if (s[0] < 0 || s[1] < 0 || s[2] < 0) {
    fail(file, section_field, "non-negative sections", section_text);
  }
  const std::int64_t half = t.head_dim / 2;
  if (s[0] + s[1] + s[2] != half) {
    fail(file, section_field, "sections summing to head_dim / 2 = " + std::to_string(half),
         section_text);
  }
  // The interleaved layout gives H the frequency slots 1, 4, ..., 3*s[1]-2 and W
  // the slots 2, 5, ..., 3*s[2]-1 (HF apply_interleaved_mrope); both must exist.
  if (3 * s[1] - 2 >= half || 3 * s[2] - 1 >= half) {
    fail(file, section_field,
         "H and W sections small enough to interleave within head_dim / 2 = " +
             std::to_string(half) + " slots (3*H-2 and 3*W-1 below it)",
         section_text);
  }
}

// Dense configs carry no expert fields; MoE ones need consistent ones.
void validate_moe(const TextConfig& t, bool moe, ConfigLayout layout, const std::string& file) {
  const std::string experts_field =
      text_field(layout == ConfigLayout::rope_parameters ? "num_local_experts" : "num_experts");
  if (!moe) {
    if (t.num_experts != 0) {
      fail(file, experts_field, "absent (0) for model_type \"qwen3_vl\"",
           std::to_string(t.num_experts));
    }
    return;
  }
  require_positive(file, experts_field, t.num_experts);
  require_positive(file, text_field("moe_intermediate_size"), t.moe_intermediate_size);
  require_positive(file, text_field("decoder_sparse_step"), t.decoder_sparse_step);
  if (t.num_experts_per_tok < 1 || t.num_experts_per_tok > t.num_experts) {
    fail(file, text_field("num_experts_per_tok"),
         "an integer in [1, num_experts = " + std::to_string(t.num_experts) + "]",
         std::to_string(t.num_experts_per_tok));
  }
  for (std::size_t i = 0; i < t.mlp_only_layers.size(); ++i) {
    const std::int64_t layer = t.mlp_only_layers[i];
    if (layer < 0 || layer >= t.num_hidden_layers) {
      fail(file, text_field("mlp_only_layers") + "[" + std::to_string(i) + "]",
           "a layer index in [0, num_hidden_layers = " + std::to_string(t.num_hidden_layers) + ")",
           std::to_string(layer));
    }
  }
}

void validate_vision(const VisionConfig& v, const TextConfig& t, const std::string& file) {
  require_positive(file, vision_field("depth"), v.depth);
  require_positive(file, vision_field("hidden_size"), v.hidden_size);
  require_positive(file, vision_field("intermediate_size"), v.intermediate_size);
  require_positive(file, vision_field("num_heads"), v.num_heads);
  require_positive(file, vision_field("in_channels"), v.in_channels);
  require_positive(file, vision_field("patch_size"), v.patch_size);
  require_positive(file, vision_field("temporal_patch_size"), v.temporal_patch_size);
  require_positive(file, vision_field("spatial_merge_size"), v.spatial_merge_size);
  require_positive(file, vision_field("out_hidden_size"), v.out_hidden_size);
  require_positive(file, vision_field("num_position_embeddings"), v.num_position_embeddings);
  require_positive(file, vision_field("rope_parameters.rope_theta"), v.rope_theta);
  if (v.hidden_size % v.num_heads != 0) {
    fail(file, vision_field("num_heads"),
         "a divisor of hidden_size (" + std::to_string(v.hidden_size) + ")",
         std::to_string(v.num_heads));
  }
  // The 2-D rotary splits each head into row and column halves of cos/sin pairs.
  if (v.head_dim() % 4 != 0) {
    fail(file, vision_field("num_heads"),
         "a head count giving head_dim = hidden_size / num_heads divisible by 4",
         std::to_string(v.num_heads) + " (head_dim " + std::to_string(v.head_dim()) + ")");
  }
  const auto side = static_cast<std::int64_t>(std::llround(
      std::sqrt(static_cast<double>(v.num_position_embeddings))));
  if (side * side != v.num_position_embeddings) {
    fail(file, vision_field("num_position_embeddings"), "a perfect square (side x side grid)",
         std::to_string(v.num_position_embeddings));
  }
  if (v.out_hidden_size != t.hidden_size) {
    fail(file, vision_field("out_hidden_size"),
         "text_config.hidden_size (" + std::to_string(t.hidden_size) + ")",
         std::to_string(v.out_hidden_size));
  }
  if (v.hidden_act != "gelu_pytorch_tanh") {
    throw_error(ErrorKind::unsupported, file, vision_field("hidden_act"),
                "\"gelu_pytorch_tanh\"", "\"" + v.hidden_act + "\"");
  }

  const auto& taps = v.deepstack_visual_indexes;
  const std::string taps_field = vision_field("deepstack_visual_indexes");
  if (static_cast<std::int64_t>(taps.size()) > t.num_hidden_layers) {
    fail(file, taps_field,
         "at most text_config.num_hidden_layers (" + std::to_string(t.num_hidden_layers) +
             ") entries",
         std::to_string(taps.size()) + " entries");
  }
  for (std::size_t i = 0; i < taps.size(); ++i) {
    const std::string field = taps_field + "[" + std::to_string(i) + "]";
    if (taps[i] < 0 || taps[i] >= v.depth) {
      fail(file, field, "a block index in [0, depth = " + std::to_string(v.depth) + ")",
           std::to_string(taps[i]));
    }
    if (i > 0 && taps[i] <= taps[i - 1]) {
      fail(file, field, "increasing indexes (greater than " + std::to_string(taps[i - 1]) + ")",
           std::to_string(taps[i]));
    }
  }
}

void validate_token_ids(const ModelConfig& c, const std::string& file) {
  const std::pair<const char*, std::int64_t> ids[] = {
      {"image_token_id", c.image_token_id},
      {"video_token_id", c.video_token_id},
      {"vision_start_token_id", c.vision_start_token_id},
      {"vision_end_token_id", c.vision_end_token_id},
  };
  for (const auto& [name, id] : ids) {
    if (id < 0 || id >= c.text.vocab_size) {
      fail(file, name,
           "a token id in [0, text_config.vocab_size = " + std::to_string(c.text.vocab_size) +
               ")",
           std::to_string(id));
    }
  }
}

// rope_theta as the Hub writes it: an integer when it is one (5000000), else a float.
Json theta_json(double theta) {
  if (theta == std::floor(theta) && std::fabs(theta) < 9.0e15) {
    return static_cast<std::int64_t>(theta);
  }
  return theta;
}

// The object with its keys in sorted order (Json keeps insertion order).
Json sorted_keys(const Json& object) {
  std::map<std::string, Json> sorted;
  for (const auto& [key, value] : object.items()) sorted.emplace(key, value);
  Json out = Json::object();
  for (auto& [key, value] : sorted) out[key] = std::move(value);
  return out;
}

Json text_config_json(const TextConfig& t, bool tie_word_embeddings, ConfigLayout layout,
                      bool moe) {
  Json rope = Json::object();
  rope["mrope_interleaved"] = t.mrope_interleaved;
  rope["mrope_section"] = t.mrope_section;
  if (layout == ConfigLayout::rope_parameters) rope["rope_theta"] = theta_json(t.rope_theta);
  rope["rope_type"] = t.rope_type;

  // Keys sorted, as transformers' to_json_string(sort_keys=True) writes them.
  Json text = Json::object();
  text["attention_bias"] = t.attention_bias;
  text["attention_dropout"] = 0.0;
  text["bos_token_id"] = kBosTokenId;
  text["dtype"] = "bfloat16";
  text["eos_token_id"] = kEosTokenId;
  text["head_dim"] = t.head_dim;
  text["hidden_act"] = t.hidden_act;
  text["hidden_size"] = t.hidden_size;
  text["initializer_range"] = 0.02;
  text["intermediate_size"] = t.intermediate_size;
  text["max_position_embeddings"] = t.max_position_embeddings;
  text["model_type"] = moe ? "qwen3_vl_moe_text" : "qwen3_vl_text";
  text["num_attention_heads"] = t.num_attention_heads;
  text["num_hidden_layers"] = t.num_hidden_layers;
  text["num_key_value_heads"] = t.num_key_value_heads;
  if (moe) {
    text["decoder_sparse_step"] = t.decoder_sparse_step;
    text["mlp_only_layers"] = t.mlp_only_layers;
    text["moe_intermediate_size"] = t.moe_intermediate_size;
    // Both write norm_topk_prob true (ignored: the router always renormalises); 5.23
    // renamed num_experts to num_local_experts (checked against its save_pretrained).
    text["norm_topk_prob"] = true;
    text[layout == ConfigLayout::rope_parameters ? "num_local_experts" : "num_experts"] = t.num_experts;
    text["num_experts_per_tok"] = t.num_experts_per_tok;
  }
  text["rms_norm_eps"] = t.rms_norm_eps;
  if (layout == ConfigLayout::rope_parameters) {
    text["rope_parameters"] = rope;
  } else {
    text["rope_scaling"] = rope;
    text["rope_theta"] = theta_json(t.rope_theta);
  }
  text["tie_word_embeddings"] = tie_word_embeddings;
  text["use_cache"] = true;
  text["vocab_size"] = t.vocab_size;
  return moe ? sorted_keys(text) : text;  // the dense keys above are already in order
}

Json vision_config_json(const VisionConfig& v, ConfigLayout layout, bool moe) {
  Json vision = Json::object();
  vision["deepstack_visual_indexes"] = v.deepstack_visual_indexes;
  vision["depth"] = v.depth;
  vision["hidden_act"] = v.hidden_act;
  vision["hidden_size"] = v.hidden_size;
  vision["in_channels"] = v.in_channels;
  vision["initializer_range"] = 0.02;
  vision["intermediate_size"] = v.intermediate_size;
  // The Hub's 4.57 files say "qwen3_vl" ("qwen3_vl_moe") here; 5.x rewrites it to
  // "qwen3_vl_vision" ("qwen3_vl_moe_vision").
  const std::string family = moe ? "qwen3_vl_moe" : "qwen3_vl";
  vision["model_type"] = layout == ConfigLayout::rope_parameters ? family + "_vision" : family;
  vision["num_heads"] = v.num_heads;
  vision["num_position_embeddings"] = v.num_position_embeddings;
  vision["out_hidden_size"] = v.out_hidden_size;
  vision["patch_size"] = v.patch_size;
  if (layout == ConfigLayout::rope_parameters) {
    vision["rope_parameters"] = Json{{"rope_theta", v.rope_theta}, {"rope_type", "axial"}};
  }
  vision["spatial_merge_size"] = v.spatial_merge_size;
  vision["temporal_patch_size"] = v.temporal_patch_size;
  return vision;
}

void check_model_type(const std::string& model_type, const std::string& file) {
  if (model_type != "qwen3_vl" && model_type != "qwen3_vl_moe") {
    fail(file, "model_type", "\"qwen3_vl\" or \"qwen3_vl_moe\"", "\"" + model_type + "\"");
  }
}

}  // namespace

bool TextConfig::is_moe_layer(std::int64_t layer) const {
  if (num_experts <= 0 || decoder_sparse_step <= 0) return false;
  for (const auto dense : mlp_only_layers) {
    if (dense == layer) return false;
  }
  return (layer + 1) % decoder_sparse_step == 0;
}

void validate_model_config(const ModelConfig& config, const std::string& file) {
  check_model_type(config.model_type, file);
  validate_text(config.text, config.layout, file);
  validate_moe(config.text, config.is_moe(), config.layout, file);
  validate_vision(config.vision, config.text, file);
  validate_token_ids(config, file);
}

ModelConfig parse_model_config(std::string_view json_text, const std::string& file) {
  const Json document = io::parse_json(json_text, file);
  const JsonObject root(document, file);

  ModelConfig config;
  config.model_type = root.get_string("model_type");
  check_model_type(config.model_type, file);
  config.text = read_text_config(root.object("text_config"), config.layout, config.is_moe());
  config.vision = read_vision_config(root.object("vision_config"));
  config.image_token_id = root.get_int("image_token_id", config.image_token_id);
  config.video_token_id = root.get_int("video_token_id", config.video_token_id);
  config.vision_start_token_id = root.get_int("vision_start_token_id", config.vision_start_token_id);
  config.vision_end_token_id = root.get_int("vision_end_token_id", config.vision_end_token_id);
  config.tie_word_embeddings = root.get_bool("tie_word_embeddings", false);
  validate_model_config(config, file);
  return config;
}

ModelConfig load_model_config(const std::filesystem::path& path) {
  const auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, file.string(), "cannot open file for reading");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_model_config(text, file.string());
}

std::string to_config_json(const ModelConfig& config, ConfigLayout layout) {
  Json root = Json::object();
  root["architectures"] = Json::array({config.is_moe() ? "Qwen3VLMoeForConditionalGeneration"
                                                      : "Qwen3VLForConditionalGeneration"});
  root["image_token_id"] = config.image_token_id;
  root["model_type"] = config.model_type;
  root["text_config"] =
      text_config_json(config.text, config.tie_word_embeddings, layout, config.is_moe());
  root["tie_word_embeddings"] = config.tie_word_embeddings;
  root["transformers_version"] = layout == ConfigLayout::rope_parameters ? "5.23.0" : "4.57.0";
  root["video_token_id"] = config.video_token_id;
  root["vision_config"] = vision_config_json(config.vision, layout, config.is_moe());
  root["vision_end_token_id"] = config.vision_end_token_id;
  root["vision_start_token_id"] = config.vision_start_token_id;
  return root.dump(2) + "\n";
}

}  // namespace q3vl
