// Output shape inference of the q3vl ops: ONNX Runtime plans buffers (reuse, memory
// pattern) only around values whose shapes it knows, so each q3vl op must tell it its
// outputs' shapes. The graph declares every output with symbolic dims only ("y0", "y1",
// ...); ONNX Runtime merges what it infers into them, so the session reports a number for
// a dim exactly when an op inferred it. The expected widths are worked out here from the
// attributes (N, num_heads·head_dim, kv_num_heads·head_dim); the leading dims stay unknown.
#include <gtest/gtest.h>

#include <onnxruntime_cxx_api.h>

#include <filesystem>
#include <string>
#include <vector>

#include "builder/graph.h"
#include "kernels/pack.h"
#include "quant_reference.h"
#include "runtime/ort_session.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

TEST(OrtShapes, QuantLinearAndQkNormRopeOutputShapesAreInferred) {
  const std::int64_t heads = 4, kv_heads = 2, head_dim = 8, k = 40;
  const std::int64_t n = (heads + 2 * kv_heads) * head_dim;
  const auto dir = work_dir() / "kernels" / "shapes";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  const LinearCase c = make_case(1, n, k, 4, 32, true, false, 11);
  const kernels::PackedMatrix p = kernels::pack(c.q);
  const auto& s = p.shape;
  builder::Graph g("shapes", dir / "shapes.onnx.data");
  const builder::Value x = g.input("x", builder::DType::f32, {"batch", "rows", k});
  const builder::Value cos = g.input("cos", builder::DType::f32, {"tokens", head_dim / 2});
  const builder::Value sin = g.input("sin", builder::DType::f32, {"tokens", head_dim / 2});
  const builder::Value qkv = g.op(
      "q3vl.QuantLinear",
      {x, g.initializer_u8("w", {s.n_tiles(), s.k_blocks(), s.tile_block_bytes()}, p.weight),
       g.initializer_f16("s", {s.n_tiles(), s.k_blocks(), kernels::kTileRows}, p.scales)},
      {{"K", k}, {"N", n}, {"bits", std::int64_t{4}}, {"block_size", std::int64_t{32}}});
  const std::vector<float> ones(static_cast<std::size_t>(head_dim), 1.0f);
  const auto qkv_out = g.ops("q3vl.QkNormRope",
                             {qkv, g.initializer_f32("qn", {head_dim}, ones), g.initializer_f32("kn", {head_dim}, ones),
                              cos, sin},
                             3, {{"num_heads", heads}, {"kv_num_heads", kv_heads}, {"head_dim", head_dim},
                                 {"epsilon", 1e-6f}});
  // Through an Identity: output() renames the value it is given, and qkv has another reader.
  g.output(g.op("Identity", {qkv}), "qkv", builder::DType::f32, {"y0", "y1", "y2"});
  const char* names[] = {"q", "k", "v"};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string dim = std::string(names[i]) + "_";
    g.output(qkv_out[i], names[i], builder::DType::f32, {dim + "0", dim + "1", dim + "2"});
  }
  g.save(dir / "shapes.onnx");

  runtime::OrtSession session("shapes", dir / "shapes.onnx", runtime::SessionConfig{});
  const std::vector<std::int64_t> widths{n, heads * head_dim, kv_heads * head_dim, kv_heads * head_dim};
  ASSERT_EQ(session.session().GetOutputCount(), widths.size());
  for (std::size_t i = 0; i < widths.size(); ++i) {
    const auto shape = session.session().GetOutputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape();
    // -1 = a symbolic dim: the leading ones stay the graph's batch/rows, the last is inferred.
    EXPECT_EQ(shape, (std::vector<std::int64_t>{-1, -1, widths[i]})) << "output " << i;
  }
}

}  // namespace
}  // namespace q3vl::testing
