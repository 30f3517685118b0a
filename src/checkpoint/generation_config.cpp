#include "checkpoint/hf_files.h"

namespace q3vl::checkpoint {

// The sampling values are the official README's "Generation Hyperparameters" for
// Instruct models (verified there: top_p 0.8, top_k 20, temperature 0.7,
// repetition_penalty 1.0). That the Hub's generation_config.json holds exactly
// these keys, and the bos/pad ids 151643, is UNVERIFIED (docs/reference/qwen3vl.md
// §11.1); eos [151645, 151643] matches hf-reference-facts.md.
io::Json qwen3vl_generation_config() {
  io::Json config = io::Json::object();
  config["bos_token_id"] = 151643;
  config["do_sample"] = true;
  config["eos_token_id"] = io::Json::array({151645, 151643});
  config["pad_token_id"] = 151643;
  config["repetition_penalty"] = 1.0;
  config["temperature"] = 0.7;
  config["top_k"] = 20;
  config["top_p"] = 0.8;
  config["transformers_version"] = "4.57.0";
  return config;
}

}  // namespace q3vl::checkpoint
