#include "builder/genai_package.h"

#include <fstream>
#include <sstream>

#include "builder/genai_config.h"
#include "builder/genai_embed_graph.h"
#include "builder/genai_vision_graph.h"
#include "builder/package_files.h"
#include "q3vl/error.h"
#include "q3vl/processor.h"

namespace q3vl::builder {
namespace {

std::int64_t bos_token_id(const io::Json& source_config) {
  for (const io::Json* j : {&source_config, source_config.contains("text_config") ? &source_config["text_config"] : nullptr}) {
    if (j != nullptr && j->contains("bos_token_id") && (*j)["bos_token_id"].is_number_integer()) {
      return (*j)["bos_token_id"].get<std::int64_t>();
    }
  }
  return -1;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "", "a readable file", "cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void write_genai_graphs(const io::Checkpoint& checkpoint, WeightReader& weights, const ModelConfig& config,
                        const GenaiGraphOptions& options, const GraphWriter& write) {
  DecoderGraphOptions decoder = options.decoder;
  decoder.deepstack = options.deepstack ? DeepstackInput::packed : DeepstackInput::none;
  const std::int64_t width = decoder_embeds_width(config, decoder.deepstack);
  write("vision", to_string(options.vision.precision), [&](Graph& g) {
    write_genai_vision_graph(g, checkpoint, config, options.vision, options.deepstack);
  });
  write("embed", to_string(options.embed_precision), [&](Graph& g) {
    write_genai_embed_graph(g, weights, config, options.embed_precision, width);
  });
  write("decoder", to_string(decoder.layers.precision), [&](Graph& g) {
    write_decoder_graph(g, weights, config, decoder);
  });
}

void write_genai_side_files(const std::filesystem::path& model_dir, const std::filesystem::path& dir,
                            const ModelConfig& config, const TokenIds& tokens, const io::Json& source_config,
                            bool deepstack) {
  copy_side_files(model_dir, dir);
  GenaiConfigOptions options;
  options.deepstack = deepstack;
  options.bos_token_id = bos_token_id(source_config);
  io::write_json_file(dir / kGenaiConfigFileName, genai_config_json(config, tokens, options));
  // Replaces a transformers 5.x processor_config.json copied above: GenAI reads this
  // name as onnxruntime-extensions' pipeline (the HF values are in it).
  const ProcessorConfig processor = load_processor_config(model_dir);
  io::write_json_file(dir / kGenaiProcessorFileName, genai_processor_json(config, processor.image));
  // GenAI's tokenizer.apply_chat_template reads the template from tokenizer_config.json;
  // checkpoints that ship it as chat_template.jinja get it copied in.
  const auto tokenizer_config = dir / "tokenizer_config.json";
  if (std::filesystem::exists(tokenizer_config) && std::filesystem::exists(model_dir / "chat_template.jinja")) {
    io::Json j = io::read_json_file(tokenizer_config);
    if (!j.contains("chat_template")) {
      j["chat_template"] = read_text(model_dir / "chat_template.jinja");
      io::write_json_file(tokenizer_config, j);
    }
  }
}

}  // namespace q3vl::builder
