#include "builder/external_data.h"

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "q3vl/error.h"

namespace q3vl::builder {

ExternalDataWriter::ExternalDataWriter(std::filesystem::path path) : path_(std::move(path)) {
  file_ = std::fopen(path_.c_str(), "wb");
  if (file_ == nullptr) {
    throw_error(ErrorKind::io, path_.string(), "cannot create weights file: " + std::string(std::strerror(errno)));
  }
}

ExternalDataWriter::~ExternalDataWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
}

ExternalDataWriter::ExternalDataWriter(ExternalDataWriter&& other) noexcept
    : path_(std::move(other.path_)), file_(other.file_), size_(other.size_) {
  other.file_ = nullptr;
}

void ExternalDataWriter::write_bytes(const std::string& tensor, const void* data, std::size_t size) {
  if (size == 0) return;
  if (std::fwrite(data, 1, size, file_) != size) {
    const int error = errno;
    throw Error(ErrorInfo{ErrorKind::io, path_.string(), tensor, {}, {},
                          "write failed (" + std::string(std::strerror(error)) +
                              "); is the disk full?"});
  }
  size_ += size;
}

std::uint64_t ExternalDataWriter::append(const std::string& tensor, std::span<const std::byte> data,
                                         std::uint64_t alignment) {
  if (file_ == nullptr) throw_error(ErrorKind::usage, path_.string(), "append after close");
  if (alignment > 1 && size_ % alignment != 0) {
    const std::vector<char> zeros(alignment - size_ % alignment, 0);
    write_bytes(tensor, zeros.data(), zeros.size());
  }
  const std::uint64_t offset = size_;
  write_bytes(tensor, data.data(), data.size());
  return offset;
}

void ExternalDataWriter::close() {
  if (file_ == nullptr) return;
  const bool flushed = std::fflush(file_) == 0;
  const int error = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    throw_error(ErrorKind::io, path_.string(),
                "cannot finish weights file (" + std::string(std::strerror(error)) + "); is the disk full?");
  }
}

}  // namespace q3vl::builder
