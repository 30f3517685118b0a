#include "builder/embed_graph.h"

#include <algorithm>

#include "builder/quantize.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr std::int64_t kEmbedBlock = 32;

// quantize_blockwise pads each row to whole blocks; GatherBlockQuantized wants the
// 8-bit codes as [rows, hidden] with a shorter last block instead.
std::vector<std::uint8_t> unpadded_rows(const QuantizedMatrix& q) {
  const std::int64_t padded = q.k_blocks * q.block_size;
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(q.n * q.k));
  for (std::int64_t r = 0; r < q.n; ++r) {
    std::copy_n(q.packed.begin() + r * padded, q.k, codes.begin() + r * q.k);
  }
  return codes;
}

}  // namespace

void write_embed_graph(Graph& g, WeightReader& w, const ModelConfig& config, WeightPrecision precision) {
  const Value ids = g.input(io::kEmbedInputIds, DType::i64, {"batch_size", "sequence_length"});
  const Value rows = write_embed_lookup(g, w, config, precision, ids);
  g.output(rows, io::kEmbedInputsEmbeds, DType::f32, {"batch_size", "sequence_length", config.text.hidden_size});
}

Value write_embed_lookup(Graph& g, WeightReader& w, const ModelConfig& config, WeightPrecision precision,
                         const Value& ids) {
  // inputs_embeds[b, t, :] = embed_tokens.weight[input_ids[b, t], :];  table: [vocab, hidden]
  const TextConfig& t = config.text;
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
    case WeightPrecision::int8: {
      // Blocks of kEmbedBlock along hidden, one float scale each, symmetric (the default
      // zero point 128 of uint8 data); GatherBlockQuantized dequantizes only the rows it
      // gathers, so the lookup costs the same and the table is a quarter of fp32.
      QuantOptions options;
      options.bits = 8;
      options.block_size = kEmbedBlock;
      options.method = QuantMethod::rtn;  // at 8 bits the mse search changes nothing that matters
      const QuantizedMatrix q = quantize_blockwise(table, t.vocab_size, t.hidden_size, options);
      table = {};
      rows = g.op("com.microsoft.GatherBlockQuantized",
                  {g.initializer_u8(g.scoped("weight"), {t.vocab_size, t.hidden_size}, unpadded_rows(q)), ids,
                   g.initializer_f32(g.scoped("scales"), {t.vocab_size, q.k_blocks}, q.scales)},
                  {{"bits", std::int64_t{8}}, {"block_size", kEmbedBlock}, {"gather_axis", std::int64_t{0}},
                   {"quantize_axis", std::int64_t{1}}});
      break;
    }
    case WeightPrecision::int4:
    case WeightPrecision::int5:
    case WeightPrecision::int6:
    case WeightPrecision::nl4:
      throw_error(ErrorKind::unsupported, "", "--vision-precision", "fp32, fp16 or int8 for the embedding table",
                  to_string(precision));
  }
  return rows;
}

}  // namespace q3vl::builder
