// ExternalDataWriter: the one weights file of a graph (ONNX external data).
//
// Tensors are appended in call order; a tensor may be aligned so its offset is a
// multiple of `alignment` (the gap is zero-filled, so output bytes are deterministic).
// Every failed write (full disk, vanished directory) throws q3vl::Error(io) naming the
// file and the tensor being written. If the writer is destroyed before close(), the
// file is removed, so a failed build leaves no half-written weights behind.
//
// Thread-safety: none. Move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>

namespace q3vl::builder {

class ExternalDataWriter {
 public:
  // Creates or truncates `path`. Throws io if it cannot be created.
  explicit ExternalDataWriter(std::filesystem::path path);
  ~ExternalDataWriter();
  ExternalDataWriter(ExternalDataWriter&& other) noexcept;
  ExternalDataWriter& operator=(ExternalDataWriter&&) = delete;
  ExternalDataWriter(const ExternalDataWriter&) = delete;
  ExternalDataWriter& operator=(const ExternalDataWriter&) = delete;

  // Pads to `alignment` (1 = none), writes `data`, returns the tensor's offset.
  std::uint64_t append(const std::string& tensor, std::span<const std::byte> data,
                       std::uint64_t alignment);
  // Flushes and closes; throws io on failure. After close() the file is kept.
  void close();

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t size() const { return size_; }

 private:
  void write_bytes(const std::string& tensor, const void* data, std::size_t size);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::uint64_t size_ = 0;
};

}  // namespace q3vl::builder
