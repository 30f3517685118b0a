#include "builder/embed_graph.h"

#include "q3vl/error.h"

namespace q3vl::builder {

void write_embed_graph(Graph& g, WeightReader& w, const ModelConfig& config, WeightPrecision precision) {
  // inputs_embeds[b, t, :] = embed_tokens.weight[input_ids[b, t], :];  table: [vocab, hidden]
  const TextConfig& t = config.text;
  Value ids = g.input(io::kEmbedInputIds, DType::i64, {"batch_size", "sequence_length"});
  auto scope = g.scope("model.language_model.embed_tokens");
  auto table = w.f32(g.scoped("weight"), {t.vocab_size, t.hidden_size});
  Value rows;
  switch (precision) {
    case WeightPrecision::fp32:
      rows = g.op("Gather", {g.initializer_f32(g.scoped("weight"), {t.vocab_size, t.hidden_size}, table), ids},
                  {{"axis", 0}});
      break;
    case WeightPrecision::fp16: {
      std::vector<std::uint16_t> half(table.size());
      for (std::size_t i = 0; i < table.size(); ++i) half[i] = io::f32_to_f16(table[i]);
      table = {};
      Value table16 = g.initializer_f16(g.scoped("weight"), {t.vocab_size, t.hidden_size}, half);
      rows = g.op("Cast", {g.op("Gather", {table16, ids}, {{"axis", 0}})}, {{"to", 1}});
      break;
    }
    default:
      throw_error(ErrorKind::unsupported, "", "--vision-precision", "fp32 or fp16 for the embedding table",
                  to_string(precision));
  }
  g.output(rows, io::kEmbedInputsEmbeds, DType::f32, {"batch_size", "sequence_length", t.hidden_size});
}

}  // namespace q3vl::builder
