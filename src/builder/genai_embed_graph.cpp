#include "builder/genai_embed_graph.h"

#include <vector>

#include "builder/embed_graph.h"

namespace q3vl::builder {

void write_genai_embed_graph(Graph& g, WeightReader& w, const ModelConfig& config, WeightPrecision precision,
                             std::int64_t width) {
  const std::int64_t h = config.text.hidden_size;
  const Value ids = g.input(io::kEmbedInputIds, DType::i64, {"batch_size", "sequence_length"});
  const Value features = g.input(kGenaiImageFeaturesInput, DType::f32, {"num_image_tokens", width});
  Value text = write_embed_lookup(g, w, config, precision, ids);  // [B, T, H]

  auto scope = g.scope("model.image_scatter");
  if (width > h) {  // zeros in the DeepStack columns of text rows
    text = g.op("Pad", {text, g.constant_i64({0, 0, 0, 0, 0, width - h})});
  }
  // slot[i] = 1-based index of the image token at flat position i (0 for text): the
  // running count of image tokens, kept only where the token is one.
  const Value flat_ids = g.op("Reshape", {ids, g.constant_i64({-1})});
  const Value is_image = g.op("Equal", {flat_ids, g.constant_i64({config.image_token_id}, {})});
  const Value image_i64 = g.op("Cast", {is_image}, {{"to", 7}});
  const Value slot = g.op("Mul", {g.op("CumSum", {image_i64, g.constant_i64({0}, {})}), image_i64});
  // Row 0 is a zero row, so text positions and an empty image_features gather safely.
  const std::vector<float> zeros(static_cast<std::size_t>(width), 0.0f);
  const Value zero_row = g.initializer_f32(g.scoped("zero_row"), {1, width}, zeros);
  const Value table = g.op("Concat", {zero_row, features}, {{"axis", 0}});
  const Value gathered = g.op("Gather", {table, slot}, {{"axis", 0}});  // [B * T, W]
  const Value shape = g.op("Shape", {text});
  const Value scattered = g.op("Reshape", {gathered, shape});
  const Value mask = g.op("Reshape", {is_image, g.op("Slice", {shape, g.constant_i64({0}), g.constant_i64({2})})});
  const Value out = g.op("Where", {g.op("Unsqueeze", {mask, g.constant_i64({2})}), scattered, text});
  g.output(out, io::kEmbedInputsEmbeds, DType::f32, {"batch_size", "sequence_length", width});
}

}  // namespace q3vl::builder
