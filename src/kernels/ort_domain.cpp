#include "kernels/ort_domain.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/bf16_attention.h"
#include "kernels/bf16_linear.h"
#include "kernels/kv_attention.h"
#include "kernels/moe.h"
#include "kernels/qk_norm_rope.h"
#include "kernels/quant_linear.h"
#include "q3vl/error.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define Q3VL_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define Q3VL_TSAN 1
#endif
#ifdef Q3VL_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace q3vl::kernels {
namespace {

enum Input { kX = 0, kWeight, kScales, kZeroPoints, kBias, kInputCount };

// Runs fn(data, i), i < total, on the session's intra-op threads (KernelContext::ParallelFor).
// Under ThreadSanitizer the hand-over is announced: ONNX Runtime (prebuilt, uninstrumented)
// passes `data` to its workers and reports their completion through its own atomics, which
// TSan cannot see, so the caller's job struct would look written by one thread and read by
// another without synchronisation. The annotations state exactly the edges ParallelFor
// guarantees: the caller's writes before the call happen before every item, and every
// item happens before the call returns.
void parallel_for(void* context, std::size_t total, void (*fn)(void*, std::size_t), void* data) {
  auto& kernel_context = *static_cast<Ort::KernelContext*>(context);
  // num_batch 0: ONNX Runtime splits `total` over its intra-op threads as it sees fit.
#ifdef Q3VL_TSAN
  struct Handoff {
    void (*fn)(void*, std::size_t);
    void* data;
  } handoff{fn, data};
  __tsan_release(&handoff);
  kernel_context.ParallelFor(
      [](void* h, std::size_t i) {
        auto* x = static_cast<Handoff*>(h);
        __tsan_acquire(x);
        x->fn(x->data, i);
        __tsan_release(x);
      },
      total, 0, &handoff);
  __tsan_acquire(&handoff);
#else
  kernel_context.ParallelFor(fn, total, 0, data);
#endif
}

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

// Output shape inference: ONNX Runtime plans its memory (buffer reuse, the memory
// pattern) only around values whose shapes it knows, and knows nothing of a custom op's
// outputs unless the op tells it. Each output is input `from`'s shape with the last
// dimension replaced.
struct OutputWidth {
  std::size_t index;
  std::int64_t last_dim;
};

void set_output_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw, std::size_t from,
                       const std::vector<OutputWidth>& outputs) {
  const Ort::ShapeInferContext::Shape& in = context.GetInputShape(from);
  // Unknown rank, or a dim with neither a size nor a name (e.g. after a Slice): leave
  // the outputs unknown rather than invent a size or a name (a shared name would claim
  // equal sizes to the planner).
  if (in.empty()) return;
  for (const auto& d : in) {
    if (d.IsInt() && d.AsInt() < 0) return;
  }
  // Through the C API: Ort::ShapeInferContext::SetOutputShape marks symbolic dims -2,
  // and ONNX Runtime 1.31.1 then drops the whole inferred shape (measured: outputs of
  // [batch, rows, K] inputs stayed unknown). -1 with the dim's name is kept.
  std::vector<std::int64_t> dims;
  std::vector<const char*> names;
  for (const auto& d : in) {
    dims.push_back(d.IsInt() ? d.AsInt() : -1);
    names.push_back(d.IsInt() ? "" : d.AsSym());
  }
  for (const OutputWidth& out : outputs) {
    dims.back() = out.last_dim;
    names.back() = "";
    OrtTensorTypeAndShapeInfo* created = nullptr;
    Ort::ThrowOnError(Ort::GetApi().CreateTensorTypeAndShapeInfo(&created));
    const Ort::TensorTypeAndShapeInfo owner(created);  // releases it
    Ort::ThrowOnError(Ort::GetApi().SetTensorElementType(created, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT));
    Ort::ThrowOnError(Ort::GetApi().SetDimensions(created, dims.data(), dims.size()));
    Ort::ThrowOnError(Ort::GetApi().SetSymbolicDimensions(created, names.data(), names.size()));
    Ort::ThrowOnError(Ort::GetApi().ShapeInferContext_SetOutputTypeShape(raw, out.index, created));
  }
}

// The optional string attribute "grid" (quant_linear.h's WeightGrid): "uniform" when the
// node has none, so packages written before the attribute existed load unchanged.
WeightGrid grid_attribute(const Ort::ConstKernelInfo& info, const std::string& where) {
  std::size_t size = 0;
  // Asked through the C API: a missing attribute is an error status there, not an exception.
  OrtStatus* status = Ort::GetApi().KernelInfoGetAttribute_string(info, "grid", nullptr, &size);
  if (status != nullptr) {
    Ort::GetApi().ReleaseStatus(status);
    return WeightGrid::uniform;
  }
  const std::string text = info.GetAttribute<std::string>("grid");
  if (text == to_string(WeightGrid::uniform)) return WeightGrid::uniform;
  if (text == to_string(WeightGrid::nl)) return WeightGrid::nl;
  throw_error(ErrorKind::usage, where, "grid", "\"uniform\" or \"nl\"", "\"" + text + "\"");
}

// Installs TOp::infer_shapes as the op's shape-inference function. Set directly rather
// than through CustomOpBase's InferOutputShape hook, whose wrapper builds the context
// outside any try: here no exception can cross the C API.
template <typename TOp>
void install_shape_inference(OrtCustomOp& op) {
  op.InferOutputShapeFn = [](const OrtCustomOp*, OrtShapeInferContext* raw) noexcept -> OrtStatusPtr {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ShapeInferContext context(&Ort::GetApi(), raw);
      TOp::infer_shapes(context, raw);
    });
  };
}

// q3vl.QuantLinear, and q3vl.QuantSwiGLU (the same inputs but the bias; `swiglu` set).
struct QuantLinearKernel {
  QuantLinearShape shape;  // QuantSwiGLU: the stacked matrix, n = swiglu_stacked_rows(width)
  bool swiglu = false;
  std::int64_t width = 0;  // y's last dimension: N, or QuantSwiGLU's I
  const char* op = kQuantLinearOp;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue x = context.GetInput(kX);
    const auto x_info = x.GetTensorTypeAndShapeInfo();
    std::vector<std::int64_t> dims = x_info.GetShape();
    if (dims.empty() || dims.back() != shape.k) {
      throw std::runtime_error(std::string("q3vl.") + op + ": input x: expected last dimension K = " + std::to_string(shape.k) +
                               ", got " + (dims.empty() ? std::string("a scalar") : std::to_string(dims.back())));
    }
    const std::int64_t m = static_cast<std::int64_t>(x_info.GetElementCount()) / shape.k;
    PackedWeightsView w;
    w.shape = shape;
    w.weight = tensor<std::uint8_t>(context, kWeight, shape.weight_bytes(), "weight");
    w.scales = reinterpret_cast<const std::uint16_t*>(
        tensor<Ort::Float16_t>(context, kScales, shape.scale_count(), "scales"));
    w.zero_points = optional_tensor<std::uint8_t>(context, kZeroPoints, shape.scale_count(), "zero_points");
    if (w.zero_points != nullptr && shape.grid == WeightGrid::nl) {
      throw std::runtime_error(std::string("q3vl.") + op + ": input zero_points: expected none with grid \"nl\"");
    }
    const float* bias = swiglu ? nullptr : optional_tensor<float>(context, kBias, shape.n, "bias");
    dims.back() = width;
    Ort::UnownedValue y = context.GetOutput(0, dims);
    Parallelism parallel{run_parallel, &context};
    if (swiglu) {
      quant_swiglu(w, width, x.GetTensorData<float>(), m, y.GetTensorMutableData<float>(), parallel);
    } else {
      quant_linear(w, x.GetTensorData<float>(), m, bias, y.GetTensorMutableData<float>(), parallel);
    }
  }

  static void run_parallel(void* context, std::size_t total, void (*fn)(void*, std::size_t), void* data) {
    parallel_for(context, total, fn, data);
  }

  template <typename T>
  const T* tensor(const Ort::KernelContext& context, std::size_t index, std::int64_t count, const char* name) const {
    const T* p = optional_tensor<T>(context, index, count, name);
    if (p == nullptr) throw std::runtime_error(std::string("q3vl.") + op + ": input " + name + " is missing");
    return p;
  }

  template <typename T>
  const T* optional_tensor(const Ort::KernelContext& context, std::size_t index, std::int64_t count,
                           const char* name) const {
    if (index >= context.GetInputCount()) return nullptr;
    const Ort::ConstValue v = context.GetInput(index);
    if (v == nullptr) return nullptr;
    const auto n = static_cast<std::int64_t>(v.GetTensorTypeAndShapeInfo().GetElementCount());
    if (n != count) {
      throw std::runtime_error(std::string("q3vl.") + op + ": input " + name + ": expected " +
                               std::to_string(count) + " elements for K, N, bits, block_size, got " +
                               std::to_string(n));
    }
    return v.GetTensorData<T>();
  }
};

// q3vl.QuantLinear (Swiglu false) and q3vl.QuantSwiGLU (true): see ort_domain.h.
template <bool Swiglu>
struct QuantLinearOp : Ort::CustomOpBase<QuantLinearOp<Swiglu>, QuantLinearKernel, true> {
  QuantLinearOp() { install_shape_inference<QuantLinearOp>(*this); }

  // y: x's shape with the last dimension N.
  static void infer_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw) {
    set_output_shapes(context, raw, kX, {{0, context.GetAttrInt("N")}});
  }

  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      QuantLinearKernel k;
      k.swiglu = Swiglu;
      k.op = GetName();
      k.width = info.GetAttribute<std::int64_t>("N");
      k.shape.k = info.GetAttribute<std::int64_t>("K");
      k.shape.n = Swiglu && k.width > 0 ? swiglu_stacked_rows(k.width) : k.width;
      k.shape.bits = static_cast<int>(info.GetAttribute<std::int64_t>("bits"));
      k.shape.block_size = info.GetAttribute<std::int64_t>("block_size");
      const std::string where = std::string("q3vl.") + GetName() + " node " + info.GetNodeName();
      k.shape.grid = grid_attribute(info, where);
      validate(k.shape, where.c_str());
      *kernel = new QuantLinearKernel{k};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return Swiglu ? kQuantSwiGLUOp : kQuantLinearOp; }
  std::size_t GetInputTypeCount() const { return Swiglu ? kBias : kInputCount; }
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

// y = q3vl.Bf16Linear(x, weight [, bias]): see ort_domain.h and bf16_linear.h.
struct Bf16LinearKernel {
  Bf16LinearShape shape;
  std::string where;  // "q3vl.Bf16Linear node <name>"

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue x = context.GetInput(0);
    const auto x_info = x.GetTensorTypeAndShapeInfo();
    std::vector<std::int64_t> dims = x_info.GetShape();
    if (dims.empty() || dims.back() != shape.k) {
      throw std::runtime_error(where + ": input x: expected last dimension K = " + std::to_string(shape.k) + ", got " +
                               (dims.empty() ? std::string("a scalar") : std::to_string(dims.back())));
    }
    const std::int64_t m = static_cast<std::int64_t>(x_info.GetElementCount()) / shape.k;
    Bf16WeightsView w;
    w.shape = shape;
    w.weight = reinterpret_cast<const std::uint16_t*>(input<Ort::BFloat16_t>(context, 1, shape.weight_count(), "weight"));
    const float* bias = context.GetInputCount() > 2 && context.GetInput(2) != nullptr
                            ? input<float>(context, 2, shape.n, "bias")
                            : nullptr;
    dims.back() = shape.n;
    Ort::UnownedValue y = context.GetOutput(0, dims);
    bf16_linear(w, x.GetTensorData<float>(), m, bias, y.GetTensorMutableData<float>(),
                Parallelism{QuantLinearKernel::run_parallel, &context});
  }

  template <typename T>
  const T* input(const Ort::KernelContext& context, std::size_t index, std::int64_t count, const char* name) const {
    const Ort::ConstValue v = context.GetInput(index);
    const auto n = static_cast<std::int64_t>(v.GetTensorTypeAndShapeInfo().GetElementCount());
    if (n != count) {
      throw std::runtime_error(where + ": input " + name + ": expected " + std::to_string(count) +
                               " elements for K, N (bf16_linear.h's layout), got " + std::to_string(n));
    }
    return v.GetTensorData<T>();
  }
};

struct Bf16LinearOp : Ort::CustomOpBase<Bf16LinearOp, Bf16LinearKernel, true> {
  Bf16LinearOp() { install_shape_inference<Bf16LinearOp>(*this); }

  // y: x's shape with the last dimension N.
  static void infer_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw) {
    set_output_shapes(context, raw, 0, {{0, context.GetAttrInt("N")}});
  }

  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      Bf16LinearShape shape;
      shape.k = info.GetAttribute<std::int64_t>("K");
      shape.n = info.GetAttribute<std::int64_t>("N");
      std::string where = std::string("q3vl.") + kBf16LinearOp + " node " + info.GetNodeName();
      validate(shape, where.c_str());
      *kernel = new Bf16LinearKernel{shape, std::move(where)};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return kBf16LinearOp; }
  std::size_t GetInputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    return index == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(std::size_t index) const {
    return index == 2 ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
                      : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  std::size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(std::size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// o = q3vl.Bf16Attention(q, k, v): see ort_domain.h and bf16_attention.h.
struct Bf16AttentionKernel {
  Bf16AttentionShape shape;
  std::string where;  // "q3vl.Bf16Attention node <name>"

  OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept {
    return as_status(ORT_FAIL, [&] { compute(Ort::KernelContext(raw)); });
  }

  void compute(Ort::KernelContext context) const {
    const Ort::ConstValue q = context.GetInput(0), k = context.GetInput(1), v = context.GetInput(2);
    const std::vector<std::int64_t> dims = q.GetTensorTypeAndShapeInfo().GetShape();
    const std::int64_t width = shape.num_heads * shape.head_dim;
    if (dims.size() != 3 || dims[2] != width) {
      throw std::runtime_error(where + ": input q: expected [B, L, num_heads * head_dim = " + std::to_string(width) + "]");
    }
    for (const auto& [value, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}}) {
      if (value->GetTensorTypeAndShapeInfo().GetShape() != dims) {
        throw std::runtime_error(where + ": input " + name + ": expected q's shape [B, L, num_heads * head_dim]");
      }
    }
    Bf16AttentionArgs args;
    args.shape = shape;
    args.batch = dims[0];
    args.length = dims[1];
    args.q = q.GetTensorData<float>();
    args.k = k.GetTensorData<float>();
    args.v = v.GetTensorData<float>();
    args.out = context.GetOutput(0, dims).GetTensorMutableData<float>();
    bf16_attention(args, Parallelism{QuantLinearKernel::run_parallel, &context});
  }
};

struct Bf16AttentionOp : Ort::CustomOpBase<Bf16AttentionOp, Bf16AttentionKernel, true> {
  Bf16AttentionOp() { install_shape_inference<Bf16AttentionOp>(*this); }

  // o: q's shape.
  static void infer_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw) {
    set_output_shapes(context, raw, 0, {{0, context.GetAttrInt("num_heads") * context.GetAttrInt("head_dim")}});
  }

  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw, void** kernel) const noexcept {
    return as_status(ORT_INVALID_ARGUMENT, [&] {
      Ort::ConstKernelInfo info(raw);
      Bf16AttentionShape shape;
      shape.num_heads = info.GetAttribute<std::int64_t>("num_heads");
      shape.head_dim = info.GetAttribute<std::int64_t>("head_dim");
      shape.scale = info.GetAttribute<float>("scale");
      std::string where = std::string("q3vl.") + kBf16AttentionOp + " node " + info.GetNodeName();
      validate(shape, where.c_str());
      *kernel = new Bf16AttentionKernel{shape, std::move(where)};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  const char* GetName() const { return kBf16AttentionOp; }
  std::size_t GetInputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetInputType(std::size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
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
  QkNormRopeOp() { install_shape_inference<QkNormRopeOp>(*this); }

  // q, k, v: qkv's shape with the last dimension num_heads·head_dim, kv_num_heads·head_dim.
  static void infer_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw) {
    const std::int64_t head_dim = context.GetAttrInt("head_dim");
    const std::int64_t kv_width = context.GetAttrInt("kv_num_heads") * head_dim;
    set_output_shapes(context, raw, 0, {{0, context.GetAttrInt("num_heads") * head_dim}, {1, kv_width}, {2, kv_width}});
  }

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

// o, present_key, present_value = q3vl.KvAttention / q3vl.KvAttentionInt8(q, k, v, past_key,
// past_value, seqlens_k, total_sequence_length): see ort_domain.h and kv_attention.h. The
// caches' last dimension is a row's bytes over the cache element (float16: head_dim,
// int8: kv_row_bytes).
template <KvCacheType Cache>
struct KvAttentionKernel {
  using Element = std::conditional_t<Cache == KvCacheType::int8, std::int8_t, Ort::Float16_t>;
  static constexpr std::int64_t kElementBytes = sizeof(Element);
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
    const std::int64_t row_width = kv_row_bytes(Cache, shape.head_dim) / kElementBytes;
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
               past_dims[3] == row_width && past_value.GetTensorTypeAndShapeInfo().GetShape() == past_dims,
           "inputs past_key, past_value: expected [B, kv_num_heads, past rows, " +
               std::string(Cache == KvCacheType::int8 ? "row bytes = " : "head_dim = ") + std::to_string(row_width) +
               "] each");
    expect(static_cast<std::int64_t>(seqlens.GetTensorTypeAndShapeInfo().GetElementCount()) == b,
           "input seqlens_k: expected B = " + std::to_string(b) + " lengths");
    expect(total.GetTensorTypeAndShapeInfo().GetElementCount() == 1, "input total_sequence_length: expected a scalar");
    const std::int64_t rows = std::max<std::int64_t>(past_dims[2], *total.GetTensorData<std::int32_t>());
    const std::vector<std::int64_t> present_dims{b, shape.kv_num_heads, rows, row_width};
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
    args.cache = Cache;
    args.key_cache = reinterpret_cast<std::uint8_t*>(present_key.GetTensorMutableData<Element>());
    args.value_cache = reinterpret_cast<std::uint8_t*>(present_value.GetTensorMutableData<Element>());
    args.out = out.GetTensorMutableData<float>();
    check_lengths(args, where.c_str());
    // past and present are one buffer when the caller binds it so (the runtime always
    // does); otherwise the past rows are copied over first, the rest zeroed.
    copy_past(past_key, args.key_cache, past_dims, rows);
    copy_past(past_value, args.value_cache, past_dims, rows);
    kv_attention(args, Parallelism{QuantLinearKernel::run_parallel, &context});
  }

  static void copy_past(const Ort::ConstValue& past, std::uint8_t* present, const std::vector<std::int64_t>& dims,
                        std::int64_t rows) {
    const auto* from = reinterpret_cast<const std::uint8_t*>(past.GetTensorData<Element>());
    if (from == present) return;
    const std::int64_t sequences = dims[0] * dims[1], past_rows = dims[2], row_bytes = dims[3] * kElementBytes;
    for (std::int64_t i = 0; i < sequences; ++i) {
      std::uint8_t* to = present + i * rows * row_bytes;
      std::copy(from + i * past_rows * row_bytes, from + (i + 1) * past_rows * row_bytes, to);
      std::fill(to + past_rows * row_bytes, to + rows * row_bytes, std::uint8_t{0});
    }
  }
};

template <KvCacheType Cache>
struct KvAttentionOp : Ort::CustomOpBase<KvAttentionOp<Cache>, KvAttentionKernel<Cache>, true> {
  KvAttentionOp() { install_shape_inference<KvAttentionOp>(*this); }

  // o: q's shape (last dimension num_heads·head_dim). The presents are the past buffers,
  // bound in place by the runtime: their shapes are not planned.
  static void infer_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw) {
    set_output_shapes(context, raw, 0, {{0, context.GetAttrInt("num_heads") * context.GetAttrInt("head_dim")}});
  }

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
      *kernel = new KvAttentionKernel<Cache>{shape, std::move(where)};  // owned by ONNX Runtime: KernelDestroy deletes it
    });
  }

  static constexpr ONNXTensorElementDataType kCacheType =
      Cache == KvCacheType::int8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
  const char* GetName() const { return Cache == KvCacheType::int8 ? kKvAttentionInt8Op : kKvAttentionOp; }
  std::size_t GetInputTypeCount() const { return 7; }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    if (index == 3 || index == 4) return kCacheType;
    return index >= 5 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  std::size_t GetOutputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetOutputType(std::size_t index) const {
    return index == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : kCacheType;
  }
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
    if ((w.fc1_zero_points != nullptr || w.fc2_zero_points != nullptr) && shape.grid == WeightGrid::nl) {
      throw std::runtime_error("q3vl.MoE: inputs fc1_zero_points, fc2_zero_points: expected none with grid \"nl\"");
    }
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
  MoEOp() { install_shape_inference<MoEOp>(*this); }

  // y: x's shape (last dimension hidden_size).
  static void infer_shapes(Ort::ShapeInferContext& context, OrtShapeInferContext* raw) {
    set_output_shapes(context, raw, kMoEX, {{0, context.GetAttrInt("hidden_size")}});
  }

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
      const std::string where = "q3vl.MoE node " + info.GetNodeName();
      shape.grid = grid_attribute(info, where);
      validate(shape, where.c_str());
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
  static QuantLinearOp<false> quant_linear_op;
  static QuantLinearOp<true> quant_swiglu_op;
  static QkNormRopeOp qk_norm_rope_op;
  static KvAttentionOp<KvCacheType::float16> kv_attention_op;
  static KvAttentionOp<KvCacheType::int8> kv_attention_int8_op;
  static MoEOp moe_op;
  static Bf16LinearOp bf16_linear_op;
  static Bf16AttentionOp bf16_attention_op;
  static Ort::CustomOpDomain domain = [] {
    Ort::CustomOpDomain d(kDomain);
    d.Add(&quant_linear_op);
    d.Add(&quant_swiglu_op);
    d.Add(&qk_norm_rope_op);
    d.Add(&kv_attention_op);
    d.Add(&kv_attention_int8_op);
    d.Add(&moe_op);
    d.Add(&bf16_linear_op);
    d.Add(&bf16_attention_op);
    return d;
  }();
  options.Add(domain);
}

}  // namespace q3vl::kernels
