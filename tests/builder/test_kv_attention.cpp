// The decoder's attention fragment (builder/kv_attention.h) with a float16 KV cache
// (q3vl.KvAttention), an int8 one (q3vl.KvAttentionInt8), both on every ISA path this CPU
// runs, and a float32 one (GroupQueryAttention) against a double-precision reference, bound the way the runtime
// binds it: one buffer as past and present (written in place), rows per sequence = the
// buffer's capacity, seqlens_k[b] = valid rows of sequence b after the call - 1. Cases:
// GQA ratios 1, 4 and 8; head_dim 24, 64 and 128; a prefill without past, a prefill
// after a past (B = 1), a decode step, and decode steps over 3 sequences of different
// lengths in one batch (the scheduler's decode).
//
// The reference attends over the cache as stored: past rows, and the new k/v rounded to
// the cache dtype. For float16 that rounding (relative 2^-11 per element) IS the cache's
// error, the same for every consumer, so it belongs in the reference (for int8 likewise
// the codes and scales, written here from the format's definition); what is left is
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
#include "kernels/kv_attention.h"
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

std::string dtype_label(builder::DType kv) {
  return kv == builder::DType::f16 ? "f16" : kv == builder::DType::i8 ? "int8" : "f32";
}

std::string label(const Case& c, builder::DType kv) {
  std::string s = dtype_label(kv) + " heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) +
                  " head_dim " + std::to_string(c.head_dim) + " S " + std::to_string(c.new_tokens) + " past";
  for (auto p : c.past) s += " " + std::to_string(p);
  return s;
}

// Bytes of one cached row of head_dim values.
std::size_t row_bytes(builder::DType kv, std::int64_t head_dim) {
  const auto hd = static_cast<std::size_t>(head_dim);
  if (kv == builder::DType::i8) return hd + 2 * ((hd + 31) / 32);
  return hd * (kv == builder::DType::f16 ? 2 : 4);
}

// The int8 row format written out from its definition (kernels/kv_attention.h): per 32
// values, scale = float16(max|x| / 127), code = x / scale rounded half to even, clamped to
// ±127; codes first, then the scales.
void encode_int8_row(const float* x, std::int64_t head_dim, unsigned char* out) {
  for (std::int64_t begin = 0; begin < head_dim; begin += 32) {
    const std::int64_t end = std::min<std::int64_t>(head_dim, begin + 32);
    float amax = 0.0f;
    for (std::int64_t d = begin; d < end; ++d) amax = std::max(amax, std::fabs(x[d]));
    const std::uint16_t bits = io::f32_to_f16(amax / 127.0f);
    const double scale = io::f16_to_f32(bits);
    for (std::int64_t d = begin; d < end; ++d) {
      double q = scale > 0 ? static_cast<double>(x[d]) / scale : 0.0;
      // Half to even, by hand: the nearest integer, and on an exact tie the even one.
      double r = std::floor(q + 0.5);
      if (r - q == 0.5 && std::fmod(r, 2.0) != 0.0) r -= 1.0;
      r = std::clamp(r, -127.0, 127.0);
      out[d] = static_cast<unsigned char>(static_cast<std::int8_t>(r));
    }
    std::memcpy(out + head_dim + 2 * (begin / 32), &bits, 2);
  }
}

void encode_row(builder::DType kv, const float* x, std::int64_t head_dim, unsigned char* out) {
  if (kv == builder::DType::i8) return encode_int8_row(x, head_dim, out);
  for (std::int64_t d = 0; d < head_dim; ++d) {
    if (kv == builder::DType::f16) {
      const std::uint16_t bits = io::f32_to_f16(x[d]);
      std::memcpy(out + 2 * d, &bits, 2);
    } else {
      std::memcpy(out + 4 * d, &x[d], 4);
    }
  }
}

void decode_row(builder::DType kv, const unsigned char* in, std::int64_t head_dim, float* x) {
  for (std::int64_t d = 0; d < head_dim; ++d) {
    if (kv == builder::DType::i8) {
      std::uint16_t bits;
      std::memcpy(&bits, in + head_dim + 2 * (d / 32), 2);
      x[d] = static_cast<float>(static_cast<std::int8_t>(in[d])) * io::f16_to_f32(bits);
    } else if (kv == builder::DType::f16) {
      std::uint16_t bits;
      std::memcpy(&bits, in + 2 * d, 2);
      x[d] = io::f16_to_f32(bits);
    } else {
      std::memcpy(&x[d], in + 4 * d, 4);
    }
  }
}

std::filesystem::path write_graph(const Case& c, builder::DType kv) {
  const auto dir = work_dir() / "kv_attention";
  std::filesystem::create_directories(dir);
  builder::Graph g("kv_attention", dir / "attention.onnx.data");
  const builder::Shape cache{"batch", c.kv_heads, "rows", builder::kv_cache_width(kv, c.head_dim)};
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
  const auto b_count = static_cast<std::int64_t>(c.past.size());
  const std::int64_t s_count = c.new_tokens, hd = c.head_dim, group = c.heads / c.kv_heads;
  const std::size_t rb = row_bytes(kv, hd);
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
  const std::int64_t cache_rows = b_count * c.kv_heads * c.capacity;
  // The cache as its bytes (random rows in the dtype's form) and as the values they hold.
  std::vector<unsigned char> key_bytes(static_cast<std::size_t>(cache_rows) * rb), value_bytes(key_bytes.size());
  std::vector<float> keys(static_cast<std::size_t>(cache_rows * hd)), values(keys.size());
  {
    const auto k0 = random(cache_rows * hd, 1.0f), v0 = random(cache_rows * hd, 1.0f);
    for (std::int64_t r = 0; r < cache_rows; ++r) {
      encode_row(kv, k0.data() + r * hd, hd, key_bytes.data() + r * rb);
      encode_row(kv, v0.data() + r * hd, hd, value_bytes.data() + r * rb);
    }
  }
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
  const std::int64_t cache_shape[4] = {b_count, c.kv_heads, c.capacity, builder::kv_cache_width(kv, hd)};
  const std::int64_t b_shape[1] = {b_count};
  const auto type = kv == builder::DType::f16  ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16
                    : kv == builder::DType::i8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8
                                               : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
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

  // The present: new rows = k/v in the dtype's form, byte for byte; every other row keeps
  // its bytes. The reference then attends over the values the rows hold.
  auto cache_row = [&](std::int64_t b, std::int64_t h, std::int64_t row) { return (b * c.kv_heads + h) * c.capacity + row; };
  auto new_row = [&](std::int64_t b, std::int64_t s, std::int64_t h) { return ((b * s_count + s) * c.kv_heads + h) * hd; };
  int bad_rows = 0;
  std::vector<unsigned char> want_k(rb), want_v(rb);
  for (std::int64_t b = 0; b < b_count; ++b) {
    const std::int64_t past = c.past[static_cast<std::size_t>(b)];
    for (std::int64_t h = 0; h < c.kv_heads; ++h) {
      for (std::int64_t row = 0; row < c.capacity; ++row) {
        const auto r = static_cast<std::size_t>(cache_row(b, h, row));
        const bool fresh = row >= past && row < past + s_count;
        if (fresh) {
          encode_row(kv, k_new.data() + new_row(b, row - past, h), hd, want_k.data());
          encode_row(kv, v_new.data() + new_row(b, row - past, h), hd, want_v.data());
        } else {
          std::copy_n(key_before.begin() + static_cast<std::ptrdiff_t>(r * rb), rb, want_k.begin());
          std::copy_n(value_before.begin() + static_cast<std::ptrdiff_t>(r * rb), rb, want_v.begin());
        }
        bad_rows += std::memcmp(key_bytes.data() + r * rb, want_k.data(), rb) != 0 ||
                    std::memcmp(value_bytes.data() + r * rb, want_v.data(), rb) != 0;
        decode_row(kv, want_k.data(), hd, keys.data() + r * static_cast<std::size_t>(hd));
        decode_row(kv, want_v.data(), hd, values.data() + r * static_cast<std::size_t>(hd));
      }
    }
  }
  EXPECT_EQ(bad_rows, 0) << name << ": present rows differing from the expected cache";
  auto cache_index = [&](std::int64_t b, std::int64_t h, std::int64_t row, std::int64_t d) {
    return static_cast<std::size_t>(cache_row(b, h, row) * hd + d);
  };

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

// Every case on every ISA path this CPU runs (the scalar path always runs).
void check_every_isa(builder::DType kv, unsigned first_seed) {
  for (const kernels::Isa isa : {kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni}) {
    if (!kernels::isa_supported(isa)) continue;
    kernels::force_isa(isa);
    SCOPED_TRACE(kernels::to_string(isa));
    unsigned seed = first_seed;
    for (const Case& c : cases()) check(c, kv, seed++);
  }
  kernels::force_isa(std::nullopt);
}

TEST(KvAttention, Float16CacheMatchesADoubleReferenceOnEveryIsa) { check_every_isa(builder::DType::f16, 900); }

// int8 rows: the op's stored codes and scales equal the format's definition byte for
// byte, and the output is the attention over the values those rows hold.
TEST(KvAttention, Int8CacheMatchesADoubleReferenceOnEveryIsa) { check_every_isa(builder::DType::i8, 1900); }

TEST(KvAttention, Float32CacheMatchesADoubleReference) {
  unsigned seed = 950;
  for (const Case& c : cases()) check(c, builder::DType::f32, seed++);
}

}  // namespace
}  // namespace q3vl::testing

namespace q3vl::testing {
namespace {

// quantize_kv_row on values worked by hand. Block 0 (32 values): max |x| = 2.54, so the
// scale is float16(2.54 / 127 = 0.02) = 1.2802734375 · 2^-6 = 0.020004272460937500
// (mantissa 0.28 · 1024 = 286.72 rounds to 287); 2.54 / s = 126.97 -> 127,
// -1 / s = -49.989 -> -50, 0.01 / s = 0.49989 -> 0, 0.03 / s = 1.4997 -> 1, the rest 0.
// Block 1 (8 values, head_dim 40): max |x| = 0.127, scale float16(0.001 = 1.024 · 2^-10)
// = (1049 / 1024) · 2^-10 = 0.00100040435791015625 (mantissa 0.024 · 1024 = 24.576 -> 25);
// 0.127 / s = 126.95 -> 127, -0.0635 / s = -63.47 -> -63, 0.0005 / s = 0.49980 -> 0.
TEST(KvAttention, Int8RowHandWorked) {
  std::vector<float> x(40, 0.0f);
  x[0] = 2.54f, x[1] = -1.0f, x[2] = 0.01f, x[3] = 0.03f;
  x[32] = 0.127f, x[33] = -0.0635f, x[34] = 0.0005f;
  std::vector<std::uint8_t> row(static_cast<std::size_t>(kernels::kv_row_bytes(kernels::KvCacheType::int8, 40)));
  ASSERT_EQ(row.size(), 40u + 2 * 2);
  kernels::quantize_kv_row(x.data(), 40, row.data());
  std::vector<int> codes(40, 0);
  codes[0] = 127, codes[1] = -50, codes[2] = 0, codes[3] = 1, codes[32] = 127, codes[33] = -63, codes[34] = 0;
  for (int d = 0; d < 40; ++d) EXPECT_EQ(static_cast<std::int8_t>(row[static_cast<std::size_t>(d)]), codes[static_cast<std::size_t>(d)]) << d;
  std::uint16_t s0, s1;
  std::memcpy(&s0, row.data() + 40, 2);
  std::memcpy(&s1, row.data() + 42, 2);
  EXPECT_EQ(io::f16_to_f32(s0), 0.0200042724609375f);
  EXPECT_EQ(io::f16_to_f32(s1), 1049.0f / 1024.0f / 1024.0f);
  // An all-zero block has scale 0 and codes 0; a NaN codes as 0 (int8 has no NaN).
  std::vector<float> z(32, 0.0f);
  z[5] = std::nanf("");
  std::vector<std::uint8_t> zrow(34, 0xAB);
  kernels::quantize_kv_row(z.data(), 32, zrow.data());
  for (int d = 0; d < 34; ++d) EXPECT_EQ(zrow[static_cast<std::size_t>(d)], 0) << d;
}

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
