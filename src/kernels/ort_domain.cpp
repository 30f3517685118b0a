#include "kernels/ort_domain.h"

#include <string>
#include <vector>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {
namespace {

enum Input { kX = 0, kWeight, kScales, kZeroPoints, kBias, kInputCount };

struct QuantLinearKernel {
  QuantLinearShape shape;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    try {
      compute(Ort::KernelContext(raw));
      return nullptr;
    } catch (const std::exception& e) {
      return Ort::Status(e.what(), ORT_FAIL).release();
    }
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
    try {
      Ort::ConstKernelInfo info(raw);
      QuantLinearShape shape;
      shape.k = info.GetAttribute<std::int64_t>("K");
      shape.n = info.GetAttribute<std::int64_t>("N");
      shape.bits = static_cast<int>(info.GetAttribute<std::int64_t>("bits"));
      shape.block_size = info.GetAttribute<std::int64_t>("block_size");
      validate(shape, ("q3vl.QuantLinear node " + info.GetNodeName()).c_str());
      *kernel = new QuantLinearKernel{shape};  // owned by ONNX Runtime: KernelDestroy deletes it
      return nullptr;
    } catch (const std::exception& e) {
      return Ort::Status(e.what(), ORT_INVALID_ARGUMENT).release();
    }
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

}  // namespace

void add_q3vl_ops(Ort::SessionOptions& options) {
  // Function-local statics: built once, destroyed after main returns, i.e. after every
  // session (sessions are owned by objects that die first) — ORT needs both alive while
  // any session that uses them exists.
  static QuantLinearOp quant_linear_op;
  static Ort::CustomOpDomain domain = [] {
    Ort::CustomOpDomain d(kDomain);
    d.Add(&quant_linear_op);
    return d;
  }();
  options.Add(domain);
}

}  // namespace q3vl::kernels
