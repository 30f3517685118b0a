// A whole file mapped read-only into memory (POSIX mmap), owned by one object.
//
// Why mmap: checkpoint tensors are handed out as zero-copy spans, and the kernel
// pages weights in on demand instead of the process copying gigabytes up front.
// The mapping is private and read-only, so a view can never write to the file.
// If another process truncates the file while it is mapped, touching the lost
// pages raises SIGBUS; checkpoints are treated as immutable while open.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <utility>

namespace q3vl::io {

class MappedFile {
 public:
  // Maps `path`. Throws q3vl::Error(io) naming the file if it cannot be opened,
  // stat'ed or mapped. An empty file gives an empty bytes() (nothing is mapped).
  static MappedFile open(const std::filesystem::path& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::filesystem::path& path() const { return path_; }
  // The file's bytes; valid until this object is destroyed or moved from.
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  MappedFile(std::filesystem::path path, const std::byte* data, std::size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  void unmap() noexcept;

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace q3vl::io
