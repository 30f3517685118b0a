// The decoder's attention fragment (builder/kv_attention.h) with a float16 KV cache
// (q3vl.KvAttention, on every ISA path this CPU runs) and a float32 one
// (GroupQueryAttention) against a double-precision reference, bound the way the runtime
// binds it: one buffer as past and present (written in place), rows per sequence = the
// buffer's capacity, seqlens_k[b] = valid rows of sequence b after the call - 1. Cases:
// GQA ratios 1, 4 and 8; head_dim 24, 64 and 128; a prefill without past, a prefill
// after a past (B = 1), a decode step, and decode steps over 3 sequences of different
// lengths in one batch (the scheduler's decode).
//
// The reference attends over the cache as stored: past rows, and the new k/v rounded to
// the cache dtype. For float16 that rounding (relative 2^-11 per element) IS the cache's
// error, the same for every consumer, so it belongs in the reference; what is left is
// the op's own float32 arithmetic (scores, a polynomial exp of relative error < 2e-7,
// sums over <= 40 rows): bound 1e-5 · max|v| per output for both dtypes. The new rows of
// the present must equal k/v rounded to the dtype exactly, every other row keeps its bits.
#include <gtest/gtest.h>

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "builder/graph.h"
#include "builder/kv_attention.h"
#include "io/dtype.h"
#include "kernels/dispatch.h"
#include "runtime/ort_session.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

struct Case {
  std::int64_t heads, kv_heads, head_dim;
  std::int64_t new_tokens;            // S
  std::vector<std::int64_t> past;     // valid rows per sequence before the call (B = size)
  std::int64_t capacity;              // rows per sequence in the buffer
};

std::string label(const Case& c, builder::DType kv) {
  std::string s = std::string(kv == builder::DType::f16 ? "f16" : "f32") + " heads " + std::to_string(c.heads) +
                  "/" + std::to_string(c.kv_heads) + " head_dim " + std::to_string(c.head_dim) + " S " +
                  std::to_string(c.new_tokens) + " past";
  for (auto p : c.past) s += " " + std::to_string(p);
  return s;
}

float round_to(builder::DType kv, float x) { return kv == builder::DType::f16 ? io::f16_to_f32(io::f32_to_f16(x)) : x; }

std::filesystem::path write_graph(const Case& c, builder::DType kv) {
  const auto dir = work_dir() / "kv_attention";
  std::filesystem::create_directories(dir);
  builder::Graph g("kv_attention", dir / "attention.onnx.data");
  const builder::Shape cache{"batch", c.kv_heads, "rows", c.head_dim};
  const auto q = g.input("q", builder::DType::f32, {"batch", "seq", c.heads * c.head_dim});
  const auto k = g.input("k", builder::DType::f32, {"batch", "seq", c.kv_heads * c.head_dim});
  const auto v = g.input("v", builder::DType::f32, {"batch", "seq", c.kv_heads * c.head_dim});
  const auto pk = g.input("past_key", kv, cache);
  const auto pv = g.input("past_value", kv, cache);
  const auto seqlens = g.input("seqlens_k", builder::DType::i32, {"batch"});
  const auto total = g.input("total_sequence_length", builder::DType::i32, {});
  const auto a = builder::write_kv_attention(g, {c.heads, c.kv_heads, c.head_dim, kv}, q, k, v, pk, pv, seqlens, total);
  g.output(a.output, "o", builder::DType::f32, {"batch", "seq", c.heads * c.head_dim});
  g.output(a.present_key, "present_key", kv, cache);
  g.output(a.present_value, "present_value", kv, cache);
  g.save(dir / "attention.onnx");
  return dir / "attention.onnx";
}

void check(const Case& c, builder::DType kv, unsigned seed) {
  const std::string name = label(c, kv);
  const bool half = kv == builder::DType::f16;
  const auto b_count = static_cast<std::int64_t>(c.past.size());
  const std::int64_t s_count = c.new_tokens, hd = c.head_dim, group = c.heads / c.kv_heads;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](std::int64_t n, float scale) {
    std::vector<float> out(static_cast<std::size_t>(n));
    for (auto& x : out) x = scale * normal(rng);
    return out;
  };
  // q scaled so that scores spread over a few units (a peaked but not one-hot softmax).
  const auto q = random(b_count * s_count * c.heads * hd, 0.6f);
  const auto k_new = random(b_count * s_count * c.kv_heads * hd, 1.0f);
  const auto v_new = random(b_count * s_count * c.kv_heads * hd, 1.0f);
  const std::int64_t cache_count = b_count * c.kv_heads * c.capacity * hd;
  // The cache as float values (already representable in the dtype) and as its bytes.
  std::vector<float> keys = random(cache_count, 1.0f), values = random(cache_count, 1.0f);
  for (auto& x : keys) x = round_to(kv, x);
  for (auto& x : values) x = round_to(kv, x);
  const std::size_t elem = half ? 2 : 4;
  std::vector<unsigned char> key_bytes(static_cast<std::size_t>(cache_count) * elem), value_bytes(key_bytes.size());
  auto store = [&](const std::vector<float>& from, std::vector<unsigned char>& to) {
    for (std::size_t i = 0; i < from.size(); ++i) {
      if (half) {
        const std::uint16_t bits = io::f32_to_f16(from[i]);
        std::memcpy(to.data() + 2 * i, &bits, 2);
      } else {
        std::memcpy(to.data() + 4 * i, &from[i], 4);
      }
    }
  };
  auto load = [&](const std::vector<unsigned char>& from, std::size_t i) {
    if (!half) {
      float x;
      std::memcpy(&x, from.data() + 4 * i, 4);
      return x;
    }
    std::uint16_t bits;
    std::memcpy(&bits, from.data() + 2 * i, 2);
    return io::f16_to_f32(bits);
  };
  store(keys, key_bytes);
  store(values, value_bytes);
  const auto key_before = key_bytes, value_before = value_bytes;

  std::vector<std::int32_t> seqlens;
  std::int64_t width = 0;
  for (auto p : c.past) {
    seqlens.push_back(static_cast<std::int32_t>(p + s_count - 1));
    width = std::max(width, p + s_count);
  }
  auto total = static_cast<std::int32_t>(width);
  std::vector<float> o(q.size());

  runtime::SessionConfig config;
  config.intra_op_threads = 2;
  runtime::OrtSession session("kv_attention", write_graph(c, kv), config);
  const auto cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const std::int64_t q_shape[3] = {b_count, s_count, c.heads * hd}, kv_shape[3] = {b_count, s_count, c.kv_heads * hd};
  const std::int64_t cache_shape[4] = {b_count, c.kv_heads, c.capacity, hd}, b_shape[1] = {b_count};
  const auto type = half ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  auto f32 = [&](const std::vector<float>& x, const std::int64_t* shape) {
    return Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(x.data()), x.size(), shape, 3);
  };
  Ort::Value qv = f32(q, q_shape), kv_value = f32(k_new, kv_shape), vv = f32(v_new, kv_shape), ov = f32(o, q_shape);
  Ort::Value pk = Ort::Value::CreateTensor(cpu, key_bytes.data(), key_bytes.size(), cache_shape, 4, type);
  Ort::Value pv = Ort::Value::CreateTensor(cpu, value_bytes.data(), value_bytes.size(), cache_shape, 4, type);
  Ort::Value sv = Ort::Value::CreateTensor<std::int32_t>(cpu, seqlens.data(), seqlens.size(), b_shape, 1);
  Ort::Value tv = Ort::Value::CreateTensor<std::int32_t>(cpu, &total, 1, b_shape, 0);
  Ort::IoBinding binding(session.session());
  binding.BindInput("q", qv);
  binding.BindInput("k", kv_value);
  binding.BindInput("v", vv);
  binding.BindInput("past_key", pk);
  binding.BindInput("past_value", pv);
  binding.BindInput("seqlens_k", sv);
  binding.BindInput("total_sequence_length", tv);
  binding.BindOutput("o", ov);
  binding.BindOutput("present_key", pk);
  binding.BindOutput("present_value", pv);
  session.session().Run(Ort::RunOptions{nullptr}, binding);

  // The present: new rows = k/v rounded to the dtype, every other row unchanged.
  auto cache_index = [&](std::int64_t b, std::int64_t h, std::int64_t row, std::int64_t d) {
    return static_cast<std::size_t>(((b * c.kv_heads + h) * c.capacity + row) * hd + d);
  };
  auto new_index = [&](std::int64_t b, std::int64_t s, std::int64_t h, std::int64_t d) {
    return static_cast<std::size_t>(((b * s_count + s) * c.kv_heads + h) * hd + d);
  };
  int bad_rows = 0;
  for (std::int64_t b = 0; b < b_count; ++b) {
    const std::int64_t past = c.past[static_cast<std::size_t>(b)];
    for (std::int64_t h = 0; h < c.kv_heads; ++h) {
      for (std::int64_t row = 0; row < c.capacity; ++row) {
        for (std::int64_t d = 0; d < hd; ++d) {
          const std::size_t i = cache_index(b, h, row, d);
          const bool fresh = row >= past && row < past + s_count;
          const float want_k = fresh ? round_to(kv, k_new[new_index(b, row - past, h, d)]) : load(key_before, i);
          const float want_v = fresh ? round_to(kv, v_new[new_index(b, row - past, h, d)]) : load(value_before, i);
          bad_rows += load(key_bytes, i) != want_k || load(value_bytes, i) != want_v;
          if (fresh) keys[i] = want_k, values[i] = want_v;
        }
      }
    }
  }
  EXPECT_EQ(bad_rows, 0) << name << ": present elements differing from the expected cache";

  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  double max_v = 0;
  for (auto x : values) max_v = std::max(max_v, static_cast<double>(std::fabs(x)));
  double worst = 0, worst_excess = -1;
  for (std::int64_t b = 0; b < b_count; ++b) {
    const std::int64_t past = c.past[static_cast<std::size_t>(b)];
    for (std::int64_t s = 0; s < s_count; ++s) {
      for (std::int64_t h = 0; h < c.heads; ++h) {
        const std::int64_t kvh = h / group;
        const float* qh = q.data() + ((b * s_count + s) * c.heads + h) * hd;
        const std::int64_t visible = past + s + 1;
        std::vector<double> w(static_cast<std::size_t>(visible));
        double top = -1e300, sum = 0;
        for (std::int64_t t = 0; t < visible; ++t) {
          double dot = 0;
          for (std::int64_t d = 0; d < hd; ++d) dot += static_cast<double>(qh[d]) * keys[cache_index(b, kvh, t, d)];
          w[static_cast<std::size_t>(t)] = dot * scale;
          top = std::max(top, dot * scale);
        }
        for (auto& x : w) sum += (x = std::exp(x - top));
        for (std::int64_t d = 0; d < hd; ++d) {
          double ref = 0;
          for (std::int64_t t = 0; t < visible; ++t) ref += w[static_cast<std::size_t>(t)] / sum * values[cache_index(b, kvh, t, d)];
          const double got = o[static_cast<std::size_t>(((b * s_count + s) * c.heads + h) * hd + d)];
          const double bound = 1e-5 * max_v;
          worst = std::max(worst, std::fabs(got - ref));
          worst_excess = std::max(worst_excess, std::fabs(got - ref) - bound);
        }
      }
    }
  }
  std::printf("[kv_attention %s] max |o - ref| %.3g (max |v| %.3g)\n", name.c_str(), worst, max_v);
  EXPECT_LE(worst_excess, 0.0) << name << ": max |o - ref| " << worst;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // GQA ratio 4, head_dim 128 (the 4B shape, fewer heads): prefill, prefill after past, decode.
      {8, 2, 128, 7, {0}, 7},
      {8, 2, 128, 6, {5}, 16},
      {8, 2, 128, 1, {37}, 40},
      // ratio 1 and 8, head_dim 64 and 24 (odd multiples of the vector width).
      {4, 4, 64, 5, {3}, 9},
      {8, 1, 24, 1, {12}, 13},
      {8, 1, 24, 9, {0}, 9},
      // ratio 3 (query groups of 4 plus 3 or 2) and head_dim 48 (chunk groups of 3).
      {6, 2, 48, 1, {10}, 12},
      {6, 2, 48, 2, {5}, 9},
      // The scheduler's decode: 3 sequences of different lengths, one shared capacity.
      {8, 2, 64, 1, {4, 0, 11}, 16},
      {4, 4, 128, 1, {20, 7, 1}, 24},
  };
  return all;
}

TEST(KvAttention, Float16CacheMatchesADoubleReferenceOnEveryIsa) {
  for (const kernels::Isa isa : {kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni}) {
    if (!kernels::isa_supported(isa)) continue;  // the scalar path always runs
    kernels::force_isa(isa);
    SCOPED_TRACE(kernels::to_string(isa));
    unsigned seed = 900;
    for (const Case& c : cases()) check(c, builder::DType::f16, seed++);
  }
  kernels::force_isa(std::nullopt);
}

TEST(KvAttention, Float32CacheMatchesADoubleReference) {
  unsigned seed = 950;
  for (const Case& c : cases()) check(c, builder::DType::f32, seed++);
}

}  // namespace
}  // namespace q3vl::testing

namespace q3vl::testing {
namespace {

// A length past the cache is refused with an error naming seqlens_k and the valid range.
TEST(KvAttention, LengthBeyondTheCacheIsAnErrorNamingSeqlensK) {
  const Case c{4, 2, 16, 1, {8}, 8};  // 8 valid rows + 1 new needs 9 rows; the cache has 8
  runtime::OrtSession session("kv_attention", write_graph(c, builder::DType::f16));
  const auto cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<float> q(4 * 16, 0.5f), kv(2 * 16, 0.25f);
  std::vector<std::uint16_t> keys(2 * 8 * 16, 0x3c00), values(keys);  // 1.0 everywhere
  std::int32_t seqlens = 8, total = 9;
  const std::int64_t q_shape[3] = {1, 1, 64}, kv_shape[3] = {1, 1, 32}, cache_shape[4] = {1, 2, 8, 16}, one[1] = {1};
  std::vector<Ort::Value> inputs;
  inputs.push_back(Ort::Value::CreateTensor<float>(cpu, q.data(), q.size(), q_shape, 3));
  inputs.push_back(Ort::Value::CreateTensor<float>(cpu, kv.data(), kv.size(), kv_shape, 3));
  inputs.push_back(Ort::Value::CreateTensor<float>(cpu, kv.data(), kv.size(), kv_shape, 3));
  inputs.push_back(Ort::Value::CreateTensor(cpu, keys.data(), keys.size() * 2, cache_shape, 4,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16));
  inputs.push_back(Ort::Value::CreateTensor(cpu, values.data(), values.size() * 2, cache_shape, 4,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16));
  inputs.push_back(Ort::Value::CreateTensor<std::int32_t>(cpu, &seqlens, 1, one, 1));
  inputs.push_back(Ort::Value::CreateTensor<std::int32_t>(cpu, &total, 1, one, 0));
  // total 9 > 8 past rows: the op allocates a 9-row present, so make the length exceed
  // that too (seqlens_k 9 = 10 valid rows).
  seqlens = 9;
  try {
    session.run({"q", "k", "v", "past_key", "past_value", "seqlens_k", "total_sequence_length"}, inputs,
                {"o", "present_key", "present_value"});
    ADD_FAILURE() << "a length past the cache ran";
  } catch (const std::exception& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("seqlens_k[0]"), std::string::npos) << message;
    EXPECT_NE(message.find("<= 9"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace q3vl::testing
