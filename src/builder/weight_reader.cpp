#include "builder/weight_reader.h"

#include "q3vl/error.h"

namespace q3vl::builder {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::vector<float> WeightReader::f32(const std::string& name, const std::vector<std::int64_t>& shape) {
  const std::string dir = checkpoint_.dir().string();
  if (!checkpoint_.contains(name)) {
    throw_error(ErrorKind::shape, dir, name, "tensor of shape " + shape_text(shape), "no such tensor");
  }
  const io::TensorView view = checkpoint_.tensor(name);
  if (view.shape != shape) {
    throw_error(ErrorKind::shape, view.file.string(), name, "shape " + shape_text(shape),
                shape_text(view.shape));
  }
  switch (view.dtype) {
    case io::DType::bf16:
    case io::DType::f16:
    case io::DType::f32:
    case io::DType::f64:
      break;
    default:
      throw_error(ErrorKind::unsupported, view.file.string(), name, "a BF16/F16/F32/F64 weight",
                  io::dtype_name(view.dtype));
  }
  std::vector<float> values = view.to_f32();
  progress_.advance(view.data.size(), name);
  return values;
}

}  // namespace q3vl::builder
