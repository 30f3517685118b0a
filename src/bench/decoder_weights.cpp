// describe_package(): the decoder's weight bytes, read from decoder.onnx's initializers
// (include/q3vl/bench.h says which bytes count and why); graph_domain_ops().
#include <onnx/onnx_pb.h>

#include <fstream>
#include <map>

#include "q3vl/bench.h"
#include "q3vl/error.h"
#include "runtime/kv_cache.h"
#include "runtime/model_parts.h"

namespace q3vl {
namespace {

// Bytes of one element of an ONNX data type (0 for types a weight never has).
std::int64_t element_bytes(int type) {
  switch (type) {
    case onnx::TensorProto::DOUBLE: case onnx::TensorProto::INT64: case onnx::TensorProto::UINT64: return 8;
    case onnx::TensorProto::FLOAT: case onnx::TensorProto::INT32: case onnx::TensorProto::UINT32: return 4;
    case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16: case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16: return 2;
    case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8: case onnx::TensorProto::BOOL: return 1;
    default: return 0;
  }
}

// Bytes an initializer occupies: the external "length" when the graph file gives it, else
// its element count times the element size.
std::int64_t initializer_bytes(const onnx::TensorProto& t, const std::string& file) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    for (const auto& entry : t.external_data()) {
      if (entry.key() == "length") return std::stoll(entry.value());
    }
  }
  std::int64_t count = 1;
  for (const auto d : t.dims()) count *= d;
  const std::int64_t size = element_bytes(t.data_type());
  if (size == 0) {
    throw_error(ErrorKind::unsupported, file, t.name() + ".data_type", "a numeric weight type",
                std::to_string(t.data_type()));
  }
  return count * size;
}

// A linear layer's tensors are named after the HF module (builder style): the
// projections "model.layers.N.{self_attn,mlp}.*_proj.*" and "lm_head.*", whatever
// the quantized format adds to the name (scales, zero points, packed blocks).
bool is_linear(const std::string& name) {
  return name.find("_proj.") != std::string::npos || name.rfind("lm_head", 0) == 0;
}

// The graph structure of `path` (initializers without their external data).
onnx::ModelProto read_graph(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "", "a readable ONNX graph", "cannot open it");
  onnx::ModelProto proto;
  if (!proto.ParseFromIstream(&in)) throw_error(ErrorKind::format, path.string(), "", "an ONNX ModelProto", "unparsable bytes");
  return proto;
}

// An MoE layer's expert tensors (builder: "...mlp.experts.fc1", ".fc2" and their scales),
// all E experts stacked.
bool is_expert(const std::string& name) { return name.find(".mlp.experts.") != std::string::npos; }

// Weights of the decoder's linear layers from config.json, independent of the format:
// attention, the dense MLPs and lm_head (an MoE layer's router and experts are not
// *_proj layers; their bytes are not in linear_weight_bytes either).
std::int64_t linear_weight_count(const TextConfig& t) {
  const std::int64_t q = t.num_attention_heads * t.head_dim;
  const std::int64_t kv = t.num_key_value_heads * t.head_dim;
  const std::int64_t attention = t.hidden_size * (q + 2 * kv) + q * t.hidden_size;
  const std::int64_t mlp = 3 * t.hidden_size * t.intermediate_size;
  std::int64_t count = t.hidden_size * t.vocab_size;
  for (std::int64_t l = 0; l < t.num_hidden_layers; ++l) count += attention + (t.is_moe_layer(l) ? 0 : mlp);
  return count;
}

std::string describe_quantization(const PackageManifest& m) {
  const QuantizationInfo& q = m.quantization;
  if (q.method.empty()) return "";
  std::string text = q.method + " block " + std::to_string(q.block_size);
  if (!q.symmetric) text += " asym";
  if (q.accuracy_level > 0) text += " level " + std::to_string(q.accuracy_level);
  // A recipe names lm_head's format and every block a rule overrides: it says more than
  // the lm_head field (a q4km package at block 64 would otherwise read "block 32").
  if (!q.recipe.empty()) {
    text += (q.fake_quant ? ", fake-quantized recipe " : ", recipe ") + q.recipe;
  } else if (!q.lm_head_precision.empty()) {
    text += " lm_head " + q.lm_head_precision;
  }
  return text;
}

}  // namespace

BenchPackage describe_package(const Model& model) {
  const runtime::ModelParts& parts = model.parts();
  const PackageManifest& m = parts.manifest;
  BenchPackage p;
  p.path = parts.dir.string();
  p.decoder_precision = m.decoder_precision;
  p.vision_precision = m.vision_precision;
  p.quantization = describe_quantization(m);
  p.has_vision = parts.vision.present();
  const runtime::KvDtype kv = runtime::parse_kv_dtype(m.kv_cache_dtype);
  p.kv_bytes_per_token = 2 * m.num_hidden_layers * m.num_key_value_heads * runtime::kv_row_width(kv, m.head_dim) *
                         static_cast<std::int64_t>(runtime::kv_element_bytes(kv));
  p.linear_weights = linear_weight_count(parts.config.text);

  const auto path = parts.dir / m.graph("decoder").file;
  const onnx::ModelProto proto = read_graph(path);
  const TextConfig& text = parts.config.text;
  for (const auto& t : proto.graph().initializer()) {
    const std::int64_t bytes = initializer_bytes(t, path.string());
    if (text.num_experts > 0 && is_expert(t.name())) {
      // A token reads its k experts of E: k/E of the layer's expert bytes.
      p.decoder_weight_bytes += bytes / text.num_experts * text.num_experts_per_tok;
      continue;
    }
    p.decoder_weight_bytes += bytes;
    if (is_linear(t.name())) p.linear_weight_bytes += bytes;
  }
  return p;
}

std::vector<std::pair<std::string, std::int64_t>> graph_domain_ops(const std::filesystem::path& onnx_file) {
  const onnx::ModelProto proto = read_graph(onnx_file);
  std::map<std::string, std::int64_t> counts;
  for (const auto& node : proto.graph().node()) {
    if (node.domain().empty() || node.domain() == "ai.onnx") continue;
    ++counts[node.domain() + "." + node.op_type()];
  }
  return {counts.begin(), counts.end()};
}

}  // namespace q3vl
