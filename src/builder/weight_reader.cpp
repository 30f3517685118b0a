#include "builder/weight_reader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "q3vl/error.h"

namespace q3vl::builder {

void release_checkpoint_pages(std::span<const std::byte> data) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(data.data()) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(data.data()) + data.size()) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::vector<std::int64_t> WeightReader::shape_of(const std::string& name) const {
  if (!checkpoint_.contains(name)) {
    throw_error(ErrorKind::shape, checkpoint_.dir().string(), name, "a tensor", "no such tensor");
  }
  return checkpoint_.tensor(name).shape;
}

std::vector<float> WeightReader::f32_slice(const std::string& name, const std::vector<std::int64_t>& shape,
                                           std::int64_t index) {
  io::TensorView view = checked_view(name, shape);
  if (shape.empty() || index < 0 || index >= shape[0]) {
    throw_error(ErrorKind::usage, view.file.string(), name, "a slice index in [0, " +
                std::to_string(shape.empty() ? 0 : shape[0]) + ")", std::to_string(index));
  }
  const auto bytes = view.data.size() / static_cast<std::size_t>(shape[0]);
  view.data = view.data.subspan(static_cast<std::size_t>(index) * bytes, bytes);
  view.shape.erase(view.shape.begin());
  std::vector<float> values = view.to_f32();
  release_checkpoint_pages(view.data);
  progress_.advance(view.data.size(), name);
  return values;
}

io::TensorView WeightReader::checked_view(const std::string& name, const std::vector<std::int64_t>& shape) const {
  const std::string dir = checkpoint_.dir().string();
  if (!checkpoint_.contains(name)) {
    throw_error(ErrorKind::shape, dir, name, "tensor of shape " + shape_text(shape), "no such tensor");
  }
  io::TensorView view = checkpoint_.tensor(name);
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
  return view;
}

std::vector<float> WeightReader::f32(const std::string& name, const std::vector<std::int64_t>& shape) {
  const io::TensorView view = checked_view(name, shape);
  std::vector<float> values = view.to_f32();
  release_checkpoint_pages(view.data);
  progress_.advance(view.data.size(), name);
  return values;
}

}  // namespace q3vl::builder
