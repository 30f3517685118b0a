// Graph: a small typed layer over the ONNX protobuf for writing one graph
// (vision.onnx, embed.onnx, decoder.onnx) directly from weights.
//
// What it writes: ModelProto IR 10, opsets ai.onnx 21 + com.microsoft 1 (+ version 1 of any
// other domain a node uses, e.g. "q3vl" for q3vl.QuantLinear) (ONNX
// Runtime validates these; Debian's onnx checker is too old to). Initializers of
// at least kInlineLimitBytes are streamed at once into ONE external-data file per
// graph (`weights_path`), so the graph never holds weight bytes in memory; tensors
// of at least kAlignLargeBytes start at a multiple of 64 KiB so ONNX Runtime can
// map them. The output depends only on the calls made (same calls, same bytes).
//
// Usage (a whole graph):
//
//   Graph g("decoder", dir / "decoder.onnx.data");
//   Value x = g.input("inputs_embeds", DType::f32, {"batch_size", "sequence_length", 2048});
//   {
//     auto scope = g.scope("model.language_model.norm");     // node names: "<scope>/<Op>"
//     Value w = g.initializer_f32(g.scoped("weight"), {2048}, weights);  // "model.language_model.norm.weight"
//     x = g.op("SimplifiedLayerNormalization", {x, w}, {{"axis", -1}, {"epsilon", 1e-6f}});
//   }
//   auto [out, present_k, present_v] = g.ops<3>("com.microsoft.GroupQueryAttention", {...}, {...});
//   g.output(x, "last_hidden_state", DType::f32, {"batch_size", "sequence_length", 2048});
//   g.save(dir / "decoder.onnx");
//
// Op names: "Add" is ai.onnx; "com.microsoft.MatMulNBits" is the com.microsoft domain
// (everything before the last '.' is the domain). An empty Value (Value{}) stands for an
// omitted optional input. Node names are "<scope>/<OpType>", made unique with "_1", "_2".
//
// API stability: other writers (vision) build on this header; changes are additive only.
//
// Errors: every failure throws q3vl::Error — io (weights file cannot be written: full
// disk, missing directory; the message names the file), usage (an output name used twice,
// a node using a value the graph does not define, byte size != shape × dtype).
// Thread-safety: none; one Graph belongs to one writer. Move-only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/dtype.h"

namespace q3vl::builder {

using io::DType;

// One dimension of a graph input/output: a fixed size or a symbolic name.
struct Dim {
  std::int64_t value = -1;
  std::string param;  // non-empty = symbolic ("batch_size")

  Dim(std::int64_t v) : value(v) {}  // NOLINT(google-explicit-constructor)
  Dim(int v) : value(v) {}           // NOLINT(google-explicit-constructor)
  Dim(const char* name) : param(name) {}        // NOLINT(google-explicit-constructor)
  Dim(std::string name) : param(std::move(name)) {}  // NOLINT(google-explicit-constructor)
  bool symbolic() const { return !param.empty(); }
};
using Shape = std::vector<Dim>;

// A named tensor in the graph: a graph input, an initializer or a node output.
struct Value {
  std::string name;  // empty = omitted optional input
  bool empty() const { return name.empty(); }
};

// A node attribute. Integers/floats/strings/int and float lists; `{"axis", -1}` works.
struct Attr {
  using Data = std::variant<std::int64_t, float, std::string, std::vector<std::int64_t>,
                            std::vector<float>>;
  std::string name;
  Data data;

  Attr(std::string n, std::int64_t v) : name(std::move(n)), data(v) {}
  Attr(std::string n, int v) : name(std::move(n)), data(std::int64_t{v}) {}
  Attr(std::string n, float v) : name(std::move(n)), data(v) {}
  Attr(std::string n, double v) : name(std::move(n)), data(static_cast<float>(v)) {}
  Attr(std::string n, const char* v) : name(std::move(n)), data(std::string(v)) {}
  Attr(std::string n, std::string v) : name(std::move(n)), data(std::move(v)) {}
  Attr(std::string n, std::vector<std::int64_t> v) : name(std::move(n)), data(std::move(v)) {}
  Attr(std::string n, std::vector<float> v) : name(std::move(n)), data(std::move(v)) {}
};

// A graph input or output as declared (the manifest records these).
struct GraphTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
};

class Graph {
 public:
  // Initializers smaller than this are stored inside the .onnx file.
  static constexpr std::uint64_t kInlineLimitBytes = 1024;
  // Initializers at least this large start at a multiple of kAlignment in the weights file.
  static constexpr std::uint64_t kAlignLargeBytes = 64 * 1024;
  static constexpr std::uint64_t kAlignment = 64 * 1024;

  // Creates (truncates) the external-data file `weights_path`; save() must later write
  // the .onnx into the same directory (the file is referenced by its file name).
  // If the Graph is destroyed without save(), the weights file is removed.
  Graph(std::string name, std::filesystem::path weights_path);
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // ---- graph inputs / outputs --------------------------------------------------
  Value input(const std::string& name, DType dtype, const Shape& shape);
  // Declares `value` as graph output `name`. A node output is renamed in place; a graph
  // input or initializer gets an Identity node. Throws usage if `name` is already taken.
  void output(const Value& value, const std::string& name, DType dtype, const Shape& shape);

  // ---- initializers (weights and constants) --------------------------------------
  // Raw bytes, little-endian, row-major; data.size() must equal numel(shape) * dtype_size.
  // Large tensors are written to the weights file before this returns (the caller's
  // buffer can be freed at once). `name` must be unique in the graph.
  Value initializer(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
                    std::span<const std::byte> data);
  Value initializer_f32(const std::string& name, const std::vector<std::int64_t>& shape,
                        std::span<const float> data);
  Value initializer_f16(const std::string& name, const std::vector<std::int64_t>& shape,
                        std::span<const std::uint16_t> data);  // IEEE half bits
  Value initializer_i64(const std::string& name, const std::vector<std::int64_t>& shape,
                        std::span<const std::int64_t> data);
  Value initializer_i32(const std::string& name, const std::vector<std::int64_t>& shape,
                        std::span<const std::int32_t> data);
  Value initializer_u8(const std::string& name, const std::vector<std::int64_t>& shape,
                       std::span<const std::uint8_t> data);
  // A large initializer produced in parts (e.g. one MoE expert at a time), so that only
  // one part is in memory: `produce` is called once and hands each part, in order, to
  // the sink it gets. The parts must add up to numel(shape) * dtype size (checked).
  using InitializerSink = std::function<void(std::span<const std::byte>)>;
  Value initializer_streamed(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
                             const std::function<void(const InitializerSink&)>& produce);

  // Small shared constants, named by content ("const.i64.[0,1]") and created once.
  // `shape` empty = scalar (values must then hold exactly one element).
  Value constant_i64(const std::vector<std::int64_t>& values,
                     const std::vector<std::int64_t>& shape);
  Value constant_i64(const std::vector<std::int64_t>& values);  // 1-D
  Value constant_f32(float value);                              // scalar

  // ---- nodes --------------------------------------------------------------------
  // Adds one node and returns its single output.
  Value op(std::string_view op, const std::vector<Value>& inputs, const std::vector<Attr>& attrs = {});
  // Adds one node with `num_outputs` outputs.
  std::vector<Value> ops(std::string_view op, const std::vector<Value>& inputs, int num_outputs,
                         const std::vector<Attr>& attrs = {});
  template <std::size_t N>
  std::array<Value, N> ops(std::string_view op_name, const std::vector<Value>& inputs,
                           const std::vector<Attr>& attrs = {}) {
    auto all = ops(op_name, inputs, static_cast<int>(N), attrs);
    std::array<Value, N> out;
    for (std::size_t i = 0; i < N; ++i) out[i] = std::move(all[i]);
    return out;
  }

  // ---- scoped names -------------------------------------------------------------
  // RAII guard: while alive, node names are prefixed with the scope path, joined by '.'
  // (scope("model") then scope("layers.3") -> "model.layers.3"). Scopes must be closed
  // in reverse order of opening (they are stack objects).
  class Scope {
   public:
    ~Scope();
    Scope(Scope&& other) noexcept;
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Scope& operator=(Scope&&) = delete;

   private:
    friend class Graph;
    explicit Scope(Graph* graph) : graph_(graph) {}
    Graph* graph_;  // the Graph outlives its scopes (both are stack objects in a writer)
  };
  [[nodiscard]] Scope scope(std::string_view part);
  // Current scope path ("" at top level).
  const std::string& scope_path() const;
  // "<scope>.<leaf>" (or `leaf` at top level): HF-style names for initializers.
  std::string scoped(std::string_view leaf) const;

  // ---- output ---------------------------------------------------------------------
  // Optional model metadata (key/value strings stored in ModelProto.metadata_props, in
  // insertion order).
  void add_metadata(const std::string& key, const std::string& value);
  // Writes the .onnx (into the directory of the weights file) and closes the weights
  // file. Call once. Throws io on write failure (the partial files are removed).
  void save(const std::filesystem::path& onnx_path);

  // Inputs and outputs in declaration order.
  const std::vector<GraphTensor>& inputs() const;
  const std::vector<GraphTensor>& outputs() const;

  // Bytes written to the weights file so far (progress reporting).
  std::uint64_t weight_bytes() const;
  const std::string& name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace q3vl::builder
