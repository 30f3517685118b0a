// The embedding graph (embed.onnx): input_ids -> inputs_embeds (names: io/embed_io.h), HF
// `model.language_model.embed_tokens` (a plain row lookup, no scaling).
//
//   inputs  input_ids      i64 [batch_size, sequence_length]
//   outputs inputs_embeds  f32 [batch_size, sequence_length, hidden_size]
//
// fp32 stores the table as is; fp16 stores it as float16 and casts the gathered rows
// (exact for the float16 values, half the file). Ids outside [0, vocab_size) make ONNX
// Runtime's Gather fail; the runtime validates ids before calling.
#pragma once

#include "builder/graph.h"
#include "builder/linear.h"
#include "builder/weight_reader.h"
#include "io/embed_io.h"
#include "q3vl/config.h"

namespace q3vl::builder {

// The IO names live in io/embed_io.h; these declarations keep builder::kEmbed* spellings
// working for code that predates the shared header.
using io::kEmbedInputIds;
using io::kEmbedInputsEmbeds;

// precision: fp32 or fp16 (int8/int4 tables are not offered; throws q3vl::Error(unsupported)).
void write_embed_graph(Graph& g, WeightReader& weights, const ModelConfig& config,
                       WeightPrecision precision);

}  // namespace q3vl::builder
