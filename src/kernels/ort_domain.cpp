#include "kernels/ort_domain.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kv_attention.h"
#include "kernels/qk_norm_rope.h"
#include "kernels/quant_linear.h"

namespace q3vl::kernels {
namespace {

enum Input { kX = 0, kWeight, kScales, kZeroPoints, kBias, kInputCount };

// No exception may cross ONNX Runtime's C API: a kernel's error becomes a status with its message.
template <typename Body>
OrtStatusPtr as_status(OrtErrorCode code, Body body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const std::exception& e) {
    return Ort::Status(e.what(), code).release();
  }
}

struct QuantLinearKernel {
  QuantLinearShape shape;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue x = context.GetInput(kX);
    const auto x_info = x.GetTensorTypeAndShapeInfo();
    std::vector<std::int64_t> dims = x_info.GetShape();
    if (dims.empty() || dims.back() != shape.k) {
      throw std::runtime_error("q3vl.QuantLinear: input x: expected last dimension K = " + std::to_string(shape.k) +
                               ", got " + (dims.empty() ? std::string("a scalar") : std::to_string(dims.back())));
    }
    const std::int64_t m = static_cast<std::int64_t>(x_info.GetElementCount()) / shape.k;
    PackedWeightsView w;
    w.shape = shape;
    w.weight = tensor<std::uint8_t>(context, kWeight, shape.weight_bytes(), "weight");
    w.scales = reinterpret_cast<const std::uint16_t*>(
        tensor<Ort::Float16_t>(context, kScales, shape.scale_count(), "scales"));
    w.zero_points = optional_tensor<std::uint8_t>(context, kZeroPoints, shape.scale_count(), "zero_points");
    const float* bias = optional_tensor<float>(context, kBias, shape.n, "bias");
    dims.back() = shape.n;
    Ort::UnownedValue y = context.GetOutput(0, dims);
    Parallelism parallel{run_parallel, &context};
    quant_linear(w, x.GetTensorData<float>(), m, bias, y.GetTensorMutableData<float>(), parallel);
  }

  static void run_parallel(void* context, std::size_t total, void (*fn)(void*, std::size_t), void* data) {
    // num_batch 0: ONNX Runtime splits `total` over its intra-op threads as it sees fit.
    static_cast<Ort::KernelContext*>(context)->ParallelFor(fn, total, 0, data);
  }

  template <typename T>
  static const T* tensor(const Ort::KernelContext& context, std::size_t index, std::int64_t count, const char* name) {
    const T* p = optional_tensor<T>(context, index, count, name);
    if (p == nullptr) throw std::runtime_error(std::string("q3vl.QuantLinear: input ") + name + " is missing");
    return p;
  }

  template <typename T>
  static const T* optional_tensor(const Ort::KernelContext& context, std::size_t index, std::int64_t count,
                                  const char* name) {
    if (index >= context.GetInputCount()) return nullptr;
    const Ort::ConstValue v = context.GetInput(index);
    if (v == nullptr) return nullptr;
    const auto n = static_cast<std::int64_t>(v.GetTensorTypeAndShapeInfo().GetElementCount());
    if (n != count) {
      throw std::runtime_error(std::string("q3vl.QuantLinear: input ") + name + ": expected " +
                               std::to_string(count) + " elements for K, N, bits, block_size, got " +
                               std::to_string(n));
    }
    return v.GetTensorData<T>();
  }
};

struct QuantLinearOp : Ort::CustomOpBase<QuantLinearOp, QuantLinearKernel, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      QuantLinearShape shape;
      shape.k = info.GetAttribute<std::int64_t>("K");
      shape.n = info.GetAttribute<std::int64_t>("N");
      shape.bits = static_cast<int>(info.GetAttribute<std::int64_t>("bits"));
      shape.block_size = info.GetAttribute<std::int64_t>("block_size");
      validate(shape, ("q3vl.QuantLinear node " + info.GetNodeName()).c_str());
      *kernel = new QuantLinearKernel{shape};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return kQuantLinearOp; }
  std::size_t GetInputTypeCount() const { return kInputCount; }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    switch (index) {
      case kX:
      case kBias: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
      case kScales: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
      default: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    }
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(std::size_t index) const {
    return index >= kZeroPoints ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
                                : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  std::size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(std::size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// q, k, v = q3vl.QkNormRope(qkv, q_norm_weight, k_norm_weight, cos, sin): see ort_domain.h.
struct QkNormRopeKernel {
  QkNormRopeShape shape;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue qkv = context.GetInput(0);
    const auto info = qkv.GetTensorTypeAndShapeInfo();
    std::vector<std::int64_t> dims = info.GetShape();
    if (dims.empty() || dims.back() != shape.qkv_width()) {
      throw std::runtime_error("q3vl.QkNormRope: input qkv: expected last dimension (num_heads + 2 kv_num_heads) * "
                               "head_dim = " + std::to_string(shape.qkv_width()) + ", got " +
                               (dims.empty() ? std::string("a scalar") : std::to_string(dims.back())));
    }
    const std::int64_t tokens = static_cast<std::int64_t>(info.GetElementCount()) / shape.qkv_width();
    QkNormRopeArgs args;
    args.shape = shape;
    args.qkv = qkv.GetTensorData<float>();
    args.q_norm = input(context, 1, shape.head_dim, "q_norm_weight");
    args.k_norm = input(context, 2, shape.head_dim, "k_norm_weight");
    args.cos = input(context, 3, tokens * shape.head_dim / 2, "cos");
    args.sin = input(context, 4, tokens * shape.head_dim / 2, "sin");
    dims.back() = shape.q_width();
    args.q = context.GetOutput(0, dims).GetTensorMutableData<float>();
    dims.back() = shape.kv_width();
    args.k = context.GetOutput(1, dims).GetTensorMutableData<float>();
    args.v = context.GetOutput(2, dims).GetTensorMutableData<float>();
    qk_norm_rope(args, tokens, Parallelism{QuantLinearKernel::run_parallel, &context});
  }

  static const float* input(const Ort::KernelContext& context, std::size_t index, std::int64_t count,
                            const char* name) {
    const Ort::ConstValue v = context.GetInput(index);
    const auto n = static_cast<std::int64_t>(v.GetTensorTypeAndShapeInfo().GetElementCount());
    if (n != count) {
      throw std::runtime_error(std::string("q3vl.QkNormRope: input ") + name + ": expected " + std::to_string(count) +
                               " elements for head_dim and the tokens of qkv, got " + std::to_string(n));
    }
    return v.GetTensorData<float>();
  }
};

struct QkNormRopeOp : Ort::CustomOpBase<QkNormRopeOp, QkNormRopeKernel, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      QkNormRopeShape shape;
      shape.num_heads = info.GetAttribute<std::int64_t>("num_heads");
      shape.kv_num_heads = info.GetAttribute<std::int64_t>("kv_num_heads");
      shape.head_dim = info.GetAttribute<std::int64_t>("head_dim");
      shape.epsilon = info.GetAttribute<float>("epsilon");
      validate(shape, ("q3vl.QkNormRope node " + info.GetNodeName()).c_str());
      *kernel = new QkNormRopeKernel{shape};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return kQkNormRopeOp; }
  std::size_t GetInputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetInputType(std::size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  std::size_t GetOutputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetOutputType(std::size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// o, present_key, present_value = q3vl.KvAttention(q, k, v, past_key, past_value, seqlens_k,
// total_sequence_length): see ort_domain.h and kv_attention.h.
struct KvAttentionKernel {
  KvAttentionShape shape;
  std::string where;  // "q3vl.KvAttention node <name>"

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue q = context.GetInput(0), k = context.GetInput(1), v = context.GetInput(2);
    const Ort::ConstValue past_key = context.GetInput(3), past_value = context.GetInput(4);
    const Ort::ConstValue seqlens = context.GetInput(5), total = context.GetInput(6);
    const std::vector<std::int64_t> q_dims = q.GetTensorTypeAndShapeInfo().GetShape();
    const std::vector<std::int64_t> past_dims = past_key.GetTensorTypeAndShapeInfo().GetShape();
    const std::int64_t kv_width = shape.kv_num_heads * shape.head_dim;
    auto expect = [&](bool ok, const std::string& what) {
      if (!ok) throw std::runtime_error(where + ": " + what);
    };
    expect(q_dims.size() == 3 && q_dims[2] == shape.num_heads * shape.head_dim,
           "input query: expected [B, S, num_heads * head_dim = " + std::to_string(shape.num_heads * shape.head_dim) + "]");
    const std::int64_t b = q_dims[0], s = q_dims[1];
    for (const auto& [value, name] : {std::pair{&k, "key"}, std::pair{&v, "value"}}) {
      expect(value->GetTensorTypeAndShapeInfo().GetShape() == std::vector<std::int64_t>{b, s, kv_width},
             std::string("input ") + name + ": expected [B, S, kv_num_heads * head_dim = " + std::to_string(kv_width) + "]");
    }
    expect(past_dims.size() == 4 && past_dims[0] == b && past_dims[1] == shape.kv_num_heads &&
               past_dims[3] == shape.head_dim && past_value.GetTensorTypeAndShapeInfo().GetShape() == past_dims,
           "inputs past_key, past_value: expected [B, kv_num_heads, past rows, head_dim] each");
    expect(static_cast<std::int64_t>(seqlens.GetTensorTypeAndShapeInfo().GetElementCount()) == b,
           "input seqlens_k: expected B = " + std::to_string(b) + " lengths");
    expect(total.GetTensorTypeAndShapeInfo().GetElementCount() == 1, "input total_sequence_length: expected a scalar");
    const std::int64_t rows = std::max<std::int64_t>(past_dims[2], *total.GetTensorData<std::int32_t>());
    const std::vector<std::int64_t> present_dims{b, shape.kv_num_heads, rows, shape.head_dim};
    Ort::UnownedValue out = context.GetOutput(0, q_dims);
    Ort::UnownedValue present_key = context.GetOutput(1, present_dims);
    Ort::UnownedValue present_value = context.GetOutput(2, present_dims);
    KvAttentionArgs args;
    args.shape = shape;
    args.batch = b;
    args.new_tokens = s;
    args.rows = rows;
    args.q = q.GetTensorData<float>();
    args.k = k.GetTensorData<float>();
    args.v = v.GetTensorData<float>();
    args.seqlens_k = seqlens.GetTensorData<std::int32_t>();
    args.key_cache = reinterpret_cast<std::uint16_t*>(present_key.GetTensorMutableData<Ort::Float16_t>());
    args.value_cache = reinterpret_cast<std::uint16_t*>(present_value.GetTensorMutableData<Ort::Float16_t>());
    args.out = out.GetTensorMutableData<float>();
    check_lengths(args, where.c_str());
    // past and present are one buffer when the caller binds it so (the runtime always
    // does); otherwise the past rows are copied over first, the rest zeroed.
    copy_past(past_key, args.key_cache, past_dims, rows);
    copy_past(past_value, args.value_cache, past_dims, rows);
    kv_attention(args, Parallelism{QuantLinearKernel::run_parallel, &context});
  }

  static void copy_past(const Ort::ConstValue& past, std::uint16_t* present, const std::vector<std::int64_t>& dims,
                        std::int64_t rows) {
    const auto* from = reinterpret_cast<const std::uint16_t*>(past.GetTensorData<Ort::Float16_t>());
    if (from == present) return;
    const std::int64_t sequences = dims[0] * dims[1], past_rows = dims[2], head_dim = dims[3];
    for (std::int64_t i = 0; i < sequences; ++i) {
      std::uint16_t* to = present + i * rows * head_dim;
      std::copy(from + i * past_rows * head_dim, from + (i + 1) * past_rows * head_dim, to);
      std::fill(to + past_rows * head_dim, to + rows * head_dim, std::uint16_t{0});
    }
  }
};

struct KvAttentionOp : Ort::CustomOpBase<KvAttentionOp, KvAttentionKernel, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      KvAttentionShape shape;
      shape.num_heads = info.GetAttribute<std::int64_t>("num_heads");
      shape.kv_num_heads = info.GetAttribute<std::int64_t>("kv_num_heads");
      shape.head_dim = info.GetAttribute<std::int64_t>("head_dim");
      shape.scale = info.GetAttribute<float>("scale");
      std::string where = "q3vl.KvAttention node " + info.GetNodeName();
      validate(shape, where.c_str());
      *kernel = new KvAttentionKernel{shape, std::move(where)};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return kKvAttentionOp; }
  std::size_t GetInputTypeCount() const { return 7; }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    if (index == 3 || index == 4) return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    return index >= 5 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  std::size_t GetOutputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetOutputType(std::size_t index) const {
    return index == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
  }
};

}  // namespace

void add_q3vl_ops(Ort::SessionOptions& options) {
  // Function-local statics: built once, destroyed after main returns, i.e. after every
  // session (sessions are owned by objects that die first) — ORT needs both alive while
  // any session that uses them exists.
  static QuantLinearOp quant_linear_op;
  static QkNormRopeOp qk_norm_rope_op;
  static KvAttentionOp kv_attention_op;
  static Ort::CustomOpDomain domain = [] {
    Ort::CustomOpDomain d(kDomain);
    d.Add(&quant_linear_op);
    d.Add(&qk_norm_rope_op);
    d.Add(&kv_attention_op);
    return d;
  }();
  options.Add(domain);
}

}  // namespace q3vl::kernels
