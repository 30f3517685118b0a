#include "builder/genai_vision_graph.h"

#include <vector>

#include "vision/grid_tables.h"

namespace q3vl::builder {
namespace {

// An int64 scalar constant.
Value scalar(Graph& g, std::int64_t value) { return g.constant_i64({value}, {}); }

struct GridValues {
  Value t;  // i64 [1]
  Value h;  // i64 scalar
  Value w;  // i64 scalar
};

GridValues read_grid(Graph& g, const Value& grid_thw) {
  const Value flat = g.op("Reshape", {grid_thw, g.constant_i64({3})});
  return {g.op("Slice", {flat, g.constant_i64({0}), g.constant_i64({1})}),
          g.op("Gather", {flat, scalar(g, 1)}, {{"axis", 0}}), g.op("Gather", {flat, scalar(g, 2)}, {{"axis", 0}})};
}

struct PatchCoords {
  Value row;  // i64 [L]
  Value col;  // i64 [L]
};

// (row, col) of every patch of one h x w frame, rows in merge-block order
// (vision::merge_block_coord): index r = ((bh * (w/m) + bw) * m + ih) * m + iw.
PatchCoords merge_block_coords(Graph& g, const GridValues& grid, std::int64_t m) {
  const Value count = g.op("Mul", {grid.h, grid.w});
  const Value r = g.op("Range", {scalar(g, 0), count, scalar(g, 1)});
  const Value mv = scalar(g, m);
  const Value block = scalar(g, m * m);
  const Value blocks_w = g.op("Div", {grid.w, mv});
  const Value in_col = g.op("Mod", {r, mv});
  const Value in_row = g.op("Mod", {g.op("Div", {r, mv}), mv});
  const Value block_col = g.op("Mod", {g.op("Div", {r, block}), blocks_w});
  const Value block_row = g.op("Div", {r, g.op("Mul", {block, blocks_w})});
  return {g.op("Add", {g.op("Mul", {block_row, mv}), in_row}), g.op("Add", {g.op("Mul", {block_col, mv}), in_col})};
}

struct AxisTapValues {
  Value taps;     // i64 [L, 2]
  Value weights;  // f32 [L, 2]
};

// Bilinear taps along one axis, the float32 operations of vision/grid_tables.cpp in the
// same order (so the weights are bit-identical to the host tables and to HF):
//   src = float(index) * float(side - 1) / float(max(size - 1, 1))
//   taps = clamp(floor(src) + {0, 1}, 0, side - 1);  weight = max(1 - |frac - offset|, 0)
AxisTapValues axis_taps(Graph& g, const Value& index, const Value& size, std::int64_t side) {
  const Value src = g.op("Div", {g.op("Mul", {g.op("Cast", {index}, {{"to", 1}}), g.constant_f32(static_cast<float>(side - 1))}),
                                 g.op("Cast", {g.op("Max", {g.op("Sub", {size, scalar(g, 1)}), scalar(g, 1)})}, {{"to", 1}})});
  const Value floor_src = g.op("Floor", {src});
  const Value frac = g.op("Sub", {src, floor_src});
  const Value base = g.op("Cast", {floor_src}, {{"to", 7}});
  std::vector<Value> taps, weights;
  for (std::int64_t offset = 0; offset < 2; ++offset) {
    const Value raw = g.op("Add", {base, scalar(g, offset)});
    const Value tap = g.op("Min", {g.op("Max", {raw, scalar(g, 0)}), scalar(g, side - 1)});
    const Value distance = g.op("Abs", {g.op("Sub", {frac, g.constant_f32(static_cast<float>(offset))})});
    const Value weight = g.op("Max", {g.op("Sub", {g.constant_f32(1.0f), distance}), g.constant_f32(0.0f)});
    taps.push_back(g.op("Unsqueeze", {tap, g.constant_i64({1})}));
    weights.push_back(g.op("Unsqueeze", {weight, g.constant_i64({1})}));
  }
  return {g.op("Concat", taps, {{"axis", 1}}), g.op("Concat", weights, {{"axis", 1}})};
}

}  // namespace

void write_genai_vision_graph(Graph& g, const io::Checkpoint& checkpoint, const ModelConfig& config,
                              const VisionGraphOptions& options, bool deepstack) {
  const VisionConfig& v = config.vision;
  const vision::GridTableParams params = vision::GridTableParams::from_config(v);
  const std::int64_t p = v.patch_input_size();
  const Value pixel_values = g.input(kGenaiPixelValues, DType::f32, {"num_patches", p});
  const Value grid_thw = g.input(kGenaiImageGridThw, DType::i64, {1, 3});

  VisionTowerInputs tower_in;
  {
    // The tables vision/grid_tables.h computes on the host for q3vl packages.
    auto scope = g.scope("model.visual.grid_tables");
    const GridValues grid = read_grid(g, grid_thw);
    const PatchCoords coords = merge_block_coords(g, grid, params.spatial_merge_size);
    const std::int64_t side = params.num_grid_per_side;
    const AxisTapValues ty = axis_taps(g, coords.row, grid.h, side);
    const AxisTapValues tx = axis_taps(g, coords.col, grid.w, side);
    // [L, 2, 1] x [L, 1, 2] -> [L, 4] in HF's tap order (r0,c0), (r0,c1), (r1,c0), (r1,c1).
    auto outer = [&](const char* op, const Value& y, const Value& x) {
      const Value yy = g.op("Unsqueeze", {y, g.constant_i64({2})});
      const Value xx = g.op("Unsqueeze", {x, g.constant_i64({1})});
      return g.op("Reshape", {g.op(op, {yy, xx}), g.constant_i64({-1, 4})});
    };
    tower_in.tap_indices = outer("Add", g.op("Mul", {ty.taps, scalar(g, side)}), tx.taps);
    tower_in.tap_weights = outer("Mul", ty.weights, tx.weights);

    // Rotary: [row angles | col angles], angle = float(pos) * inv_freq.
    const std::vector<float> inv_freq = vision::vision_rotary_inv_freq(params);
    const Value inv = g.initializer_f32(g.scoped("inv_freq"), {1, static_cast<std::int64_t>(inv_freq.size())}, inv_freq);
    auto angles = [&](const Value& pos) {
      return g.op("Mul", {g.op("Unsqueeze", {g.op("Cast", {pos}, {{"to", 1}}), g.constant_i64({1})}), inv});
    };
    const Value row_angle = angles(coords.row);
    const Value col_angle = angles(coords.col);
    tower_in.rotary_cos =
        g.op("Concat", {g.op("Cos", {row_angle}), g.op("Cos", {col_angle})}, {{"axis", 1}});
    tower_in.rotary_sin =
        g.op("Concat", {g.op("Sin", {row_angle}), g.op("Sin", {col_angle})}, {{"axis", 1}});
    // [t * h * w, P] -> [t, h * w, P]: each temporal group is one attention segment.
    tower_in.pixels = g.op("Reshape", {pixel_values, g.op("Concat", {grid.t, g.constant_i64({-1, p})}, {{"axis", 0}})});
  }
  // ONNX Runtime GenAI has no q3vl op domain.
  VisionGraphOptions tower_options = options;
  tower_options.q3vl_ops = false;
  const VisionTowerOutputs tower = write_vision_tower(g, checkpoint, config, tower_options, tower_in);

  std::vector<Value> columns{tower.merged};
  if (deepstack) columns.insert(columns.end(), tower.deepstack.begin(), tower.deepstack.end());
  const auto width = static_cast<std::int64_t>(columns.size()) * v.out_hidden_size;
  Value features = columns[0];
  if (columns.size() > 1) {
    auto scope = g.scope("model.visual.deepstack_columns");
    features = g.op("Concat", columns, {{"axis", 1}});
  }
  g.output(features, kGenaiImageFeatures, DType::f32, {"num_image_tokens", width});
}

}  // namespace q3vl::builder
