#include "kernels/ort_domain.h"

#include <string>
#include <vector>

#include "kernels/moe.h"
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

// y = q3vl.MoE(x, router_logits, fc1, fc1_scales, fc2, fc2_scales [, fc1_zero_points, fc2_zero_points]):
// see ort_domain.h.
enum MoEInput { kMoEX = 0, kMoELogits, kFc1, kFc1Scales, kFc2, kFc2Scales, kFc1ZeroPoints, kFc2ZeroPoints, kMoEInputCount };

struct MoEKernel {
  MoEShape shape;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue x = context.GetInput(kMoEX);
    const auto x_info = x.GetTensorTypeAndShapeInfo();
    const std::vector<std::int64_t> dims = x_info.GetShape();
    if (dims.empty() || dims.back() != shape.hidden_size) {
      throw std::runtime_error("q3vl.MoE: input x: expected last dimension hidden_size = " +
                               std::to_string(shape.hidden_size) + ", got " +
                               (dims.empty() ? std::string("a scalar") : std::to_string(dims.back())));
    }
    const std::int64_t tokens = static_cast<std::int64_t>(x_info.GetElementCount()) / shape.hidden_size;
    const QuantLinearShape fc1 = shape.fc1(), fc2 = shape.fc2();
    const std::int64_t E = shape.num_experts;
    MoEWeights w;
    w.shape = shape;
    const float* logits = input<float>(context, kMoELogits, tokens * E, "router_logits", "[tokens, num_experts]");
    w.fc1 = input<std::uint8_t>(context, kFc1, E * fc1.weight_bytes(), "fc1", "the tile layout");
    w.fc1_scales = reinterpret_cast<const std::uint16_t*>(
        input<Ort::Float16_t>(context, kFc1Scales, E * fc1.scale_count(), "fc1_scales", "the tile layout"));
    w.fc2 = input<std::uint8_t>(context, kFc2, E * fc2.weight_bytes(), "fc2", "the tile layout");
    w.fc2_scales = reinterpret_cast<const std::uint16_t*>(
        input<Ort::Float16_t>(context, kFc2Scales, E * fc2.scale_count(), "fc2_scales", "the tile layout"));
    w.fc1_zero_points = optional_input<std::uint8_t>(context, kFc1ZeroPoints, E * fc1.scale_count(),
                                                     "fc1_zero_points", "the tile layout");
    w.fc2_zero_points = optional_input<std::uint8_t>(context, kFc2ZeroPoints, E * fc2.scale_count(),
                                                     "fc2_zero_points", "the tile layout");
    Ort::UnownedValue y = context.GetOutput(0, dims);
    moe(w, x.GetTensorData<float>(), logits, tokens, y.GetTensorMutableData<float>(),
        Parallelism{QuantLinearKernel::run_parallel, &context});
  }

  template <typename T>
  static const T* input(const Ort::KernelContext& context, std::size_t index, std::int64_t count, const char* name,
                        const char* layout) {
    const T* p = optional_input<T>(context, index, count, name, layout);
    if (p == nullptr) throw std::runtime_error(std::string("q3vl.MoE: input ") + name + " is missing");
    return p;
  }

  template <typename T>
  static const T* optional_input(const Ort::KernelContext& context, std::size_t index, std::int64_t count,
                                 const char* name, const char* layout) {
    if (index >= context.GetInputCount()) return nullptr;
    const Ort::ConstValue v = context.GetInput(index);
    if (v == nullptr) return nullptr;
    const auto n = static_cast<std::int64_t>(v.GetTensorTypeAndShapeInfo().GetElementCount());
    if (n != count) {
      throw std::runtime_error(std::string("q3vl.MoE: input ") + name + ": expected " + std::to_string(count) +
                               " elements (" + layout + " for num_experts, k, hidden_size, intermediate_size, bits, "
                               "block_size), got " + std::to_string(n));
    }
    return v.GetTensorData<T>();
  }
};

struct MoEOp : Ort::CustomOpBase<MoEOp, MoEKernel, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      MoEShape shape;
      shape.num_experts = info.GetAttribute<std::int64_t>("num_experts");
      shape.k = info.GetAttribute<std::int64_t>("k");
      shape.hidden_size = info.GetAttribute<std::int64_t>("hidden_size");
      shape.intermediate_size = info.GetAttribute<std::int64_t>("intermediate_size");
      shape.bits = static_cast<int>(info.GetAttribute<std::int64_t>("bits"));
      shape.block_size = info.GetAttribute<std::int64_t>("block_size");
      validate(shape, ("q3vl.MoE node " + info.GetNodeName()).c_str());
      *kernel = new MoEKernel{shape};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return kMoEOp; }
  std::size_t GetInputTypeCount() const { return kMoEInputCount; }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    switch (index) {
      case kMoEX:
      case kMoELogits: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
      case kFc1Scales:
      case kFc2Scales: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
      default: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    }
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(std::size_t index) const {
    return index >= kFc1ZeroPoints ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
                                   : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  std::size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(std::size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

void add_q3vl_ops(Ort::SessionOptions& options) {
  // Function-local statics: built once, destroyed after main returns, i.e. after every
  // session (sessions are owned by objects that die first) — ORT needs both alive while
  // any session that uses them exists.
  static QuantLinearOp quant_linear_op;
  static QkNormRopeOp qk_norm_rope_op;
  static MoEOp moe_op;
  static Ort::CustomOpDomain domain = [] {
    Ort::CustomOpDomain d(kDomain);
    d.Add(&quant_linear_op);
    d.Add(&qk_norm_rope_op);
    d.Add(&moe_op);
    return d;
  }();
  options.Add(domain);
}

}  // namespace q3vl::kernels
