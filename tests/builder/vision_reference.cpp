#include "builder/vision_reference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace q3vl::testing {
namespace {

using Matrix = std::vector<double>;  // row-major [rows, cols]

// y[n, o] = sum_i x[n, i] * w[o, i] + b[o]   (nn.Linear, w in [out, in])
Matrix linear(const Matrix& x, std::int64_t rows, std::int64_t in, const std::vector<float>& w,
              const std::vector<float>& b, std::int64_t out) {
  Matrix y(static_cast<std::size_t>(rows * out));
  for (std::int64_t n = 0; n < rows; ++n) {
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = b[static_cast<std::size_t>(o)];
      for (std::int64_t i = 0; i < in; ++i) {
        acc += x[static_cast<std::size_t>(n * in + i)] * w[static_cast<std::size_t>(o * in + i)];
      }
      y[static_cast<std::size_t>(n * out + o)] = acc;
    }
  }
  return y;
}

Matrix layer_norm(const Matrix& x, std::int64_t rows, std::int64_t width, const std::vector<float>& gamma,
                  const std::vector<float>& beta) {
  Matrix y(x.size());
  for (std::int64_t n = 0; n < rows; ++n) {
    const double* row = x.data() + n * width;
    double mean = 0;
    for (std::int64_t i = 0; i < width; ++i) mean += row[i];
    mean /= static_cast<double>(width);
    double var = 0;
    for (std::int64_t i = 0; i < width; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<double>(width);
    const double inv = 1.0 / std::sqrt(var + 1e-6);
    for (std::int64_t i = 0; i < width; ++i) {
      y[static_cast<std::size_t>(n * width + i)] =
          (row[i] - mean) * inv * gamma[static_cast<std::size_t>(i)] + beta[static_cast<std::size_t>(i)];
    }
  }
  return y;
}

double gelu_tanh(double z) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * z * (1.0 + std::tanh(k * (z + 0.044715 * z * z * z)));
}
double gelu_erf(double z) { return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0))); }

}  // namespace

VisionReference::VisionReference(const io::Checkpoint& checkpoint, VisionConfig config)
    : config_(std::move(config)) {
  const std::string prefix = "model.visual.";
  for (const std::string& name : checkpoint.names()) {
    if (name.rfind(prefix, 0) == 0) weights_[name.substr(prefix.size())] = checkpoint.tensor(name).to_f32();
  }
}

const std::vector<float>& VisionReference::weight(const std::string& name) const {
  const auto it = weights_.find(name);
  if (it == weights_.end()) throw std::runtime_error("vision reference: no weight " + name);
  return it->second;
}

VisionReferenceOutput VisionReference::run(std::span<const float> pixels, std::int64_t h,
                                           std::int64_t w) const {
  const VisionConfig& v = config_;
  const std::int64_t c = v.hidden_size;
  const std::int64_t heads = v.num_heads;
  const std::int64_t d = c / heads;
  const std::int64_t m = v.spatial_merge_size;
  const std::int64_t l = h * w;
  const std::int64_t p = v.patch_input_size();
  const auto side = static_cast<std::int64_t>(std::lround(std::sqrt(double(v.num_position_embeddings))));

  // (row, col) of each merge-block row: enumerate blocks, then the m x m patches inside.
  std::vector<std::int64_t> rows_of, cols_of;
  for (std::int64_t bh = 0; bh < h / m; ++bh)
    for (std::int64_t bw = 0; bw < w / m; ++bw)
      for (std::int64_t ih = 0; ih < m; ++ih)
        for (std::int64_t iw = 0; iw < m; ++iw) {
          rows_of.push_back(bh * m + ih);
          cols_of.push_back(bw * m + iw);
        }

  // Patch embedding (Conv3d with kernel = stride = a linear layer on the row).
  Matrix x(pixels.begin(), pixels.end());
  x = linear(x, l, p, weight("patch_embed.proj.weight"), weight("patch_embed.proj.bias"), c);

  // Bilinear resampling of the side x side table with aligned corners (F.interpolate
  // align_corners=True), evaluated per patch in double.
  const std::vector<float>& table = weight("pos_embed.weight");
  auto axis = [side](std::int64_t i, std::int64_t n, std::int64_t& lo, std::int64_t& hi, double& frac) {
    const double src = n > 1 ? double(i) * double(side - 1) / double(n - 1) : 0.0;
    lo = static_cast<std::int64_t>(std::floor(src));
    hi = std::min(lo + 1, side - 1);
    frac = src - double(lo);
  };
  for (std::int64_t r = 0; r < l; ++r) {
    std::int64_t r0, r1, c0, c1;
    double fr, fc;
    axis(rows_of[static_cast<std::size_t>(r)], h, r0, r1, fr);
    axis(cols_of[static_cast<std::size_t>(r)], w, c0, c1, fc);
    for (std::int64_t i = 0; i < c; ++i) {
      auto at = [&](std::int64_t tr, std::int64_t tc) {
        return double(table[static_cast<std::size_t>((tr * side + tc) * c + i)]);
      };
      x[static_cast<std::size_t>(r * c + i)] += (1 - fr) * (1 - fc) * at(r0, c0) + (1 - fr) * fc * at(r0, c1) +
                                                fr * (1 - fc) * at(r1, c0) + fr * fc * at(r1, c1);
    }
  }

  // 2-D rotary: dims [0, d/4) row frequencies, [d/4, d/2) column frequencies, repeated.
  const std::int64_t quarter = d / 4;
  std::vector<double> angle(static_cast<std::size_t>(l * d));
  for (std::int64_t r = 0; r < l; ++r) {
    for (std::int64_t k = 0; k < quarter; ++k) {
      const double inv = std::pow(v.rope_theta, -2.0 * double(k) / double(d / 2));
      for (std::int64_t half = 0; half < 2; ++half) {
        angle[static_cast<std::size_t>(r * d + half * d / 2 + k)] = double(rows_of[static_cast<std::size_t>(r)]) * inv;
        angle[static_cast<std::size_t>(r * d + half * d / 2 + quarter + k)] =
            double(cols_of[static_cast<std::size_t>(r)]) * inv;
      }
    }
  }
  auto rotate = [&](Matrix& t, std::int64_t offset) {  // t: [l, 3c]; rotate the block at `offset`
    for (std::int64_t r = 0; r < l; ++r)
      for (std::int64_t hd = 0; hd < heads; ++hd) {
        double* vec = t.data() + r * 3 * c + offset + hd * d;
        std::vector<double> out(static_cast<std::size_t>(d));
        for (std::int64_t i = 0; i < d; ++i) {
          const double rot = i < d / 2 ? -vec[i + d / 2] : vec[i - d / 2];
          const double a = angle[static_cast<std::size_t>(r * d + i)];
          out[static_cast<std::size_t>(i)] = vec[i] * std::cos(a) + rot * std::sin(a);
        }
        std::copy(out.begin(), out.end(), vec);
      }
  };

  VisionReferenceOutput result;
  result.deepstack.resize(v.deepstack_visual_indexes.size());
  auto merger = [&](const std::string& path, const Matrix& hidden, bool postshuffle) {
    const std::int64_t grouped = c * m * m;
    const std::int64_t tokens = l / (m * m);
    // Consecutive rows form a merge block, so grouping is a reinterpretation of the buffer.
    const Matrix normed = postshuffle
                              ? layer_norm(hidden, tokens, grouped, weight(path + ".norm.weight"), weight(path + ".norm.bias"))
                              : layer_norm(hidden, l, c, weight(path + ".norm.weight"), weight(path + ".norm.bias"));
    Matrix a = linear(normed, tokens, grouped, weight(path + ".linear_fc1.weight"), weight(path + ".linear_fc1.bias"), grouped);
    for (double& z : a) z = gelu_erf(z);
    const Matrix out = linear(a, tokens, grouped, weight(path + ".linear_fc2.weight"),
                              weight(path + ".linear_fc2.bias"), v.out_hidden_size);
    return std::vector<float>(out.begin(), out.end());
  };

  const double scale = 1.0 / std::sqrt(double(d));
  for (std::int64_t b = 0; b < v.depth; ++b) {
    const std::string path = "blocks." + std::to_string(b);
    Matrix y = layer_norm(x, l, c, weight(path + ".norm1.weight"), weight(path + ".norm1.bias"));
    Matrix qkv = linear(y, l, c, weight(path + ".attn.qkv.weight"), weight(path + ".attn.qkv.bias"), 3 * c);
    rotate(qkv, 0);
    rotate(qkv, c);
    Matrix attended(static_cast<std::size_t>(l * c));
    std::vector<double> scores(static_cast<std::size_t>(l));
    for (std::int64_t hd = 0; hd < heads; ++hd) {
      for (std::int64_t i = 0; i < l; ++i) {
        double top = -1e300;
        for (std::int64_t j = 0; j < l; ++j) {
          double dot = 0;
          for (std::int64_t e = 0; e < d; ++e)
            dot += qkv[static_cast<std::size_t>(i * 3 * c + hd * d + e)] *
                   qkv[static_cast<std::size_t>(j * 3 * c + c + hd * d + e)];
          scores[static_cast<std::size_t>(j)] = dot * scale;
          top = std::max(top, dot * scale);
        }
        double total = 0;
        for (double& s : scores) total += (s = std::exp(s - top));
        for (std::int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (std::int64_t j = 0; j < l; ++j)
            acc += scores[static_cast<std::size_t>(j)] * qkv[static_cast<std::size_t>(j * 3 * c + 2 * c + hd * d + e)];
          attended[static_cast<std::size_t>(i * c + hd * d + e)] = acc / total;
        }
      }
    }
    const Matrix proj = linear(attended, l, c, weight(path + ".attn.proj.weight"), weight(path + ".attn.proj.bias"), c);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += proj[i];

    y = layer_norm(x, l, c, weight(path + ".norm2.weight"), weight(path + ".norm2.bias"));
    Matrix hidden = linear(y, l, c, weight(path + ".mlp.linear_fc1.weight"), weight(path + ".mlp.linear_fc1.bias"),
                           v.intermediate_size);
    for (double& z : hidden) z = v.hidden_act == "gelu" ? gelu_erf(z) : gelu_tanh(z);
    const Matrix mlp = linear(hidden, l, v.intermediate_size, weight(path + ".mlp.linear_fc2.weight"),
                              weight(path + ".mlp.linear_fc2.bias"), c);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += mlp[i];

    const auto& taps = v.deepstack_visual_indexes;
    const auto it = std::find(taps.begin(), taps.end(), b);
    if (it != taps.end()) {
      const auto j = static_cast<std::size_t>(it - taps.begin());
      result.deepstack[j] = merger("deepstack_merger_list." + std::to_string(j), x, true);
    }
  }
  result.merged = merger("merger", x, false);
  return result;
}

}  // namespace q3vl::testing
