#include "text_reference.h"

#include <cmath>
#include <cstring>
#include <random>

#include "io/dtype.h"

namespace q3vl::testing {
namespace {

using Matrix = std::vector<double>;  // row-major

std::vector<double> load(const io::Checkpoint& c, const std::string& name) {
  auto f = c.tensor(name).to_f32();
  return std::vector<double>(f.begin(), f.end());
}

// y[t, o] = sum_i x[t, i] * w[o, i]
Matrix matmul_t(const Matrix& x, const Matrix& w, std::int64_t rows, std::int64_t in, std::int64_t out) {
  Matrix y(static_cast<std::size_t>(rows * out), 0.0);
  for (std::int64_t t = 0; t < rows; ++t) {
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (std::int64_t i = 0; i < in; ++i) acc += x[t * in + i] * w[o * in + i];
      y[t * out + o] = acc;
    }
  }
  return y;
}

// Each consecutive run of n values: x * w / sqrt(mean(x^2) + eps)
void rms_norm(Matrix& x, const std::vector<double>& w, std::int64_t n, double eps) {
  for (std::size_t start = 0; start < x.size(); start += n) {
    double ss = 0;
    for (std::int64_t i = 0; i < n; ++i) ss += x[start + i] * x[start + i];
    const double r = 1.0 / std::sqrt(ss / n + eps);
    for (std::int64_t i = 0; i < n; ++i) x[start + i] = x[start + i] * r * w[i];
  }
}

}  // namespace

std::vector<double> reference_text_logits(const io::Checkpoint& c, const ModelConfig& config,
                                          const std::vector<float>& inputs_embeds,
                                          const std::vector<std::int64_t>& position_ids,
                                          const std::vector<float>& deepstack, std::int64_t T) {
  const TextConfig& t = config.text;
  const std::int64_t D = t.hidden_size, hd = t.head_dim, H = t.num_attention_heads,
                     KV = t.num_key_value_heads, I = t.intermediate_size, half = hd / 2;
  const std::string p = "model.language_model.";

  // MRoPE angles per token and frequency slot (interleaved THW...; HF apply_interleaved_mrope).
  std::vector<double> cosv(static_cast<std::size_t>(T * half)), sinv(cosv.size());
  for (std::int64_t j = 0; j < half; ++j) {
    // float32 inv_freq as HF computes it
    const float inv = 1.0f / std::pow(static_cast<float>(t.rope_theta),
                                      static_cast<float>(2 * j) / static_cast<float>(hd));
    int axis = 0;
    if (j % 3 == 1 && j < 3 * t.mrope_section[1]) axis = 1;
    if (j % 3 == 2 && j < 3 * t.mrope_section[2]) axis = 2;
    for (std::int64_t s = 0; s < T; ++s) {
      const float angle = static_cast<float>(position_ids[axis * T + s]) * inv;
      cosv[s * half + j] = std::cos(static_cast<double>(angle));
      sinv[s * half + j] = std::sin(static_cast<double>(angle));
    }
  }
  auto rope = [&](Matrix& x, std::int64_t heads) {
    for (std::int64_t s = 0; s < T; ++s) {
      for (std::int64_t h = 0; h < heads; ++h) {
        double* v = &x[(s * heads + h) * hd];
        for (std::int64_t j = 0; j < half; ++j) {
          const double a = v[j], b = v[j + half], cs = cosv[s * half + j], sn = sinv[s * half + j];
          v[j] = a * cs - b * sn;
          v[j + half] = b * cs + a * sn;
        }
      }
    }
  };

  Matrix x(inputs_embeds.begin(), inputs_embeds.end());
  const std::int64_t taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  for (std::int64_t l = 0; l < t.num_hidden_layers; ++l) {
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    Matrix a = x;
    rms_norm(a, load(c, lp + "input_layernorm.weight"), D, t.rms_norm_eps);
    Matrix q = matmul_t(a, load(c, lp + "self_attn.q_proj.weight"), T, D, H * hd);
    Matrix k = matmul_t(a, load(c, lp + "self_attn.k_proj.weight"), T, D, KV * hd);
    Matrix v = matmul_t(a, load(c, lp + "self_attn.v_proj.weight"), T, D, KV * hd);
    rms_norm(q, load(c, lp + "self_attn.q_norm.weight"), hd, t.rms_norm_eps);
    rms_norm(k, load(c, lp + "self_attn.k_norm.weight"), hd, t.rms_norm_eps);
    rope(q, H);
    rope(k, KV);
    Matrix o(static_cast<std::size_t>(T * H * hd), 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t kvh = h / (H / KV);
      for (std::int64_t s = 0; s < T; ++s) {
        std::vector<double> score(static_cast<std::size_t>(s + 1));
        double mx = -1e300;
        for (std::int64_t u = 0; u <= s; ++u) {
          double d = 0;
          for (std::int64_t i = 0; i < hd; ++i) d += q[(s * H + h) * hd + i] * k[(u * KV + kvh) * hd + i];
          score[u] = d * scale;
          mx = std::max(mx, score[u]);
        }
        double sum = 0;
        for (auto& e : score) sum += (e = std::exp(e - mx));
        for (std::int64_t u = 0; u <= s; ++u) {
          for (std::int64_t i = 0; i < hd; ++i) o[(s * H + h) * hd + i] += score[u] / sum * v[(u * KV + kvh) * hd + i];
        }
      }
    }
    Matrix attn = matmul_t(o, load(c, lp + "self_attn.o_proj.weight"), T, H * hd, D);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += attn[i];
    Matrix m = x;
    rms_norm(m, load(c, lp + "post_attention_layernorm.weight"), D, t.rms_norm_eps);
    Matrix gate = matmul_t(m, load(c, lp + "mlp.gate_proj.weight"), T, D, I);
    Matrix up = matmul_t(m, load(c, lp + "mlp.up_proj.weight"), T, D, I);
    for (std::size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    Matrix down = matmul_t(gate, load(c, lp + "mlp.down_proj.weight"), T, I, D);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += down[i];
    if (l < taps) {
      for (std::int64_t i = 0; i < T * D; ++i) x[i] += deepstack[l * T * D + i];
    }
  }
  rms_norm(x, load(c, p + "norm.weight"), D, t.rms_norm_eps);
  const std::string head = config.tie_word_embeddings ? p + "embed_tokens.weight" : "lm_head.weight";
  return matmul_t(x, load(c, head), T, D, t.vocab_size);
}

void write_text_checkpoint(const std::filesystem::path& dir, const ModelConfig& config, unsigned seed) {
  const TextConfig& t = config.text;
  const std::int64_t D = t.hidden_size, hd = t.head_dim, H = t.num_attention_heads,
                     KV = t.num_key_value_heads, I = t.intermediate_size;
  const std::string p = "model.language_model.";
  struct Item {
    io::TensorSpec spec;
    double mean, std;
  };
  std::vector<Item> items;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, double mean, double std_dev,
                 io::DType dtype = io::DType::bf16) {
    items.push_back({io::TensorSpec{name, dtype, std::move(shape)}, mean, std_dev});
  };
  // Scales from docs/reference/hf-reference-facts.md ("random weights that behave").
  add(p + "embed_tokens.weight", {t.vocab_size, D}, 0, 0.4);
  for (std::int64_t l = 0; l < t.num_hidden_layers; ++l) {
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    add(lp + "input_layernorm.weight", {D}, 1, 0.1);
    add(lp + "post_attention_layernorm.weight", {D}, 1, 0.1, io::DType::f32);
    add(lp + "self_attn.q_proj.weight", {H * hd, D}, 0, 3 / std::sqrt(double(D)));
    add(lp + "self_attn.k_proj.weight", {KV * hd, D}, 0, 3 / std::sqrt(double(D)));
    add(lp + "self_attn.v_proj.weight", {KV * hd, D}, 0, 3 / std::sqrt(double(D)), io::DType::f32);
    add(lp + "self_attn.o_proj.weight", {D, H * hd}, 0, 3 / std::sqrt(double(H * hd)));
    add(lp + "self_attn.q_norm.weight", {hd}, 1, 0.1);
    add(lp + "self_attn.k_norm.weight", {hd}, 1, 0.1);
    add(lp + "mlp.gate_proj.weight", {I, D}, 0, 3 / std::sqrt(double(D)));
    add(lp + "mlp.up_proj.weight", {I, D}, 0, 3 / std::sqrt(double(D)));
    add(lp + "mlp.down_proj.weight", {D, I}, 0, 3 / std::sqrt(double(I)));
  }
  add(p + "norm.weight", {D}, 1, 0.1);
  if (!config.tie_word_embeddings) add("lm_head.weight", {t.vocab_size, D}, 0, 0.4);

  std::vector<io::TensorSpec> specs;
  for (const auto& item : items) specs.push_back(item.spec);
  std::mt19937 rng(seed);
  std::size_t index = 0;
  io::write_checkpoint(dir, specs, 1ull << 40, [&](const io::TensorSpec& spec, const io::TensorSink& sink) {
    const Item& item = items[index++];
    std::normal_distribution<double> dist(item.mean, item.std);
    std::vector<std::byte> bytes(spec.byte_size());
    const std::size_t n = bytes.size() / io::dtype_size(spec.dtype);
    for (std::size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(dist(rng));
      if (spec.dtype == io::DType::bf16) {
        const std::uint16_t b = io::f32_to_bf16(v);
        std::memcpy(bytes.data() + 2 * i, &b, 2);
      } else {
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
    }
    sink(bytes);
  });
}

ModelConfig custom_text_config(bool tied) {
  ModelConfig c;
  c.text.vocab_size = 97;
  c.text.hidden_size = 48;
  c.text.intermediate_size = 80;
  c.text.num_hidden_layers = 3;
  c.text.num_attention_heads = 6;
  c.text.num_key_value_heads = 2;
  c.text.head_dim = 16;  // != 48 / 6
  c.text.max_position_embeddings = 4096;
  c.text.rms_norm_eps = 1e-6;
  c.text.rope_theta = 10000.0;
  c.text.mrope_section = {3, 3, 2};
  c.vision.deepstack_visual_indexes = {1, 2};
  c.tie_word_embeddings = tied;
  return c;
}

}  // namespace q3vl::testing
