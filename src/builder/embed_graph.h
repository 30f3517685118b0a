// The embedding graph (embed.onnx): input_ids -> inputs_embeds (names: io/embed_io.h), HF
// `model.language_model.embed_tokens` (a plain row lookup, no scaling).
//
//   inputs  input_ids      i64 [batch_size, sequence_length]
//   outputs inputs_embeds  f32 [batch_size, sequence_length, hidden_size]
//
// fp32 stores the table as is; fp16 stores it as float16 and casts the gathered rows
// (exact for the float16 values, half the file); int8 stores 8-bit codes with one float
// scale per 32 values of a row (com.microsoft.GatherBlockQuantized; every value within
// half a step of its code, a quarter of the file). Ids outside [0, vocab_size) make ONNX
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

// precision: fp32, fp16 or int8 (an int4 table is not offered; throws q3vl::Error(unsupported)).
void write_embed_graph(Graph& g, WeightReader& weights, const ModelConfig& config,
                       WeightPrecision precision);

// The lookup alone: ids i64 [batch_size, sequence_length] -> f32 [batch_size, sequence_length,
// hidden_size], in the current graph (the GenAI embedding graph, builder/genai_embed_graph.h,
// wraps it with the image-feature scatter). Same precisions and errors as write_embed_graph.
Value write_embed_lookup(Graph& g, WeightReader& weights, const ModelConfig& config, WeightPrecision precision,
                         const Value& ids);

}  // namespace q3vl::builder
