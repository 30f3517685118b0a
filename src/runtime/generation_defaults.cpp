// generation_config.json -> GenerateOptions defaults (see model_parts.h).
#include <cstdint>
#include <filesystem>

#include "io/json_file.h"
#include "q3vl/error.h"
#include "runtime/model_parts.h"

namespace q3vl::runtime {
namespace {

const char* kFile = "generation_config.json";

double number(const io::Json& json, const char* key, double fallback) {
  if (!json.contains(key) || json[key].is_null()) return fallback;
  if (!json[key].is_number()) {
    throw_error(ErrorKind::config, kFile, key, "number", io::describe_json_value(json[key]));
  }
  return json[key].get<double>();
}

// An integer field. HF writes these as JSON integers; a number with a fraction or outside
// [0, 2^31) is refused before any conversion (casting such a double is undefined).
std::int64_t count(const io::Json& json, const char* key, std::int64_t fallback) {
  constexpr double kMax = 2147483647.0;
  const double value = number(json, key, static_cast<double>(fallback));
  if (!(value >= 0.0 && value <= kMax) || value != static_cast<double>(static_cast<std::int64_t>(value))) {
    throw_error(ErrorKind::config, kFile, key, "an integer in [0, 2147483647]", io::describe_json_value(json[key]));
  }
  return static_cast<std::int64_t>(value);
}

}  // namespace

GenerateOptions load_generation_defaults(const std::filesystem::path& dir,
                                         const std::vector<std::int64_t>& fallback_eos) {
  GenerateOptions options;
  options.stop_token_ids = fallback_eos;
  const auto path = dir / kFile;
  if (!std::filesystem::exists(path)) return options;
  const io::Json json = io::read_json_file(path);
  if (!json.is_object()) throw_error(ErrorKind::config, kFile, "", "object", io::describe_json_value(json));
  SamplingOptions& s = options.sampling;
  if (json.contains("do_sample") && !json["do_sample"].is_null()) {
    if (!json["do_sample"].is_boolean()) {
      throw_error(ErrorKind::config, kFile, "do_sample", "boolean", io::describe_json_value(json["do_sample"]));
    }
    s.do_sample = json["do_sample"].get<bool>();
  } else {
    s.do_sample = false;  // HF GenerationConfig default
  }
  s.temperature = static_cast<float>(number(json, "temperature", 1.0));
  s.top_k = count(json, "top_k", 50);  // HF default 50
  s.top_p = static_cast<float>(number(json, "top_p", 1.0));
  s.min_p = static_cast<float>(number(json, "min_p", 0.0));
  s.repetition_penalty = static_cast<float>(number(json, "repetition_penalty", 1.0));
  options.max_new_tokens = count(json, "max_new_tokens", 256);
  if (json.contains("eos_token_id") && !json["eos_token_id"].is_null()) {
    const io::Json& eos = json["eos_token_id"];
    options.stop_token_ids.clear();
    if (eos.is_number_integer()) {
      options.stop_token_ids.push_back(eos.get<std::int64_t>());
    } else if (eos.is_array()) {
      for (const auto& id : eos) {
        if (!id.is_number_integer()) {
          throw_error(ErrorKind::config, kFile, "eos_token_id", "integer or list of integers",
                      io::describe_json_value(eos));
        }
        options.stop_token_ids.push_back(id.get<std::int64_t>());
      }
    } else {
      throw_error(ErrorKind::config, kFile, "eos_token_id", "integer or list of integers",
                  io::describe_json_value(eos));
    }
  }
  return options;
}

}  // namespace q3vl::runtime
