// SafetensorsFile and TensorView: a validated header over a read-only mapping.
#include <cstring>
#include <unordered_map>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_header.h"
#include "q3vl/error.h"

namespace q3vl::io {

std::int64_t TensorView::numel() const {
  std::int64_t count = 1;
  for (const std::int64_t dim : shape) count *= dim;
  return count;
}

namespace {

// Reads element i of type T from unaligned little-endian bytes (x86/ARM are
// little-endian, like the format).
template <typename T>
T load(std::span<const std::byte> data, std::size_t i) {
  T value;
  std::memcpy(&value, data.data() + i * sizeof(T), sizeof(T));
  return value;
}

}  // namespace

std::vector<float> TensorView::to_f32() const {
  const std::size_t count = data.size() / dtype_size(dtype);
  std::vector<float> values(count);
  switch (dtype) {
    case DType::f32:
      if (count != 0) std::memcpy(values.data(), data.data(), data.size());
      break;
    case DType::bf16:
      for (std::size_t i = 0; i < count; ++i) values[i] = bf16_to_f32(load<std::uint16_t>(data, i));
      break;
    case DType::f16:
      for (std::size_t i = 0; i < count; ++i) values[i] = f16_to_f32(load<std::uint16_t>(data, i));
      break;
    case DType::f64:
      for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>(load<double>(data, i));
      break;
    default:
      throw_error(ErrorKind::shape, file.string(), name, "a float dtype (BF16, F16, F32, F64)",
                  dtype_name(dtype));
  }
  return values;
}

struct SafetensorsFile::Impl {
  MappedFile mapping;
  SafetensorsHeader header;
  std::vector<std::string> names;                     // data-offset order
  std::unordered_map<std::string, std::size_t> index;  // name -> header.tensors[i]
};

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path, SafetensorsLimits limits) {
  MappedFile mapping = MappedFile::open(path);
  SafetensorsHeader header =
      parse_safetensors_header(mapping.bytes(), path.string(), limits);
  auto impl = std::make_unique<Impl>(Impl{std::move(mapping), std::move(header), {}, {}});
  for (std::size_t i = 0; i < impl->header.tensors.size(); ++i) {
    impl->names.push_back(impl->header.tensors[i].name);
    impl->index.emplace(impl->header.tensors[i].name, i);
  }
  return SafetensorsFile(std::move(impl));
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

const std::filesystem::path& SafetensorsFile::path() const { return impl_->mapping.path(); }

const std::vector<std::string>& SafetensorsFile::names() const { return impl_->names; }

bool SafetensorsFile::contains(const std::string& name) const {
  return impl_->index.count(name) != 0;
}

TensorView SafetensorsFile::tensor(const std::string& name) const {
  const auto found = impl_->index.find(name);
  if (found == impl_->index.end()) {
    throw_error(ErrorKind::shape, path().string(), name, "a tensor of this name", "none");
  }
  const TensorEntry& entry = impl_->header.tensors[found->second];
  const auto bytes = impl_->mapping.bytes().subspan(
      static_cast<std::size_t>(impl_->header.data_start + entry.begin),
      static_cast<std::size_t>(entry.end - entry.begin));
  return TensorView{entry.name, entry.dtype, entry.shape, bytes, path()};
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return impl_->header.metadata;
}

}  // namespace q3vl::io
