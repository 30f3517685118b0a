// SHA-256 (FIPS 180-4) over bytes, text or a whole file, as lower-case hex.
//
// Used to pin downloads (setup), checkpoint determinism and golden files. The
// digest comes from OpenSSL's EVP interface; this file only adapts it.
//
// Thread-safety: the free functions are thread-safe; one Sha256 object must not
// be used from two threads at once.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace q3vl::core {

// Incremental hashing: update() any number of times, then finish_hex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> data);
  void update(std::string_view text);
  // The 64-character lower-case hex digest. Afterwards the object may only be
  // destroyed or assigned to; update() / finish_hex() throw q3vl::Error(usage).
  std::string finish_hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::span<const std::byte> data);
std::string sha256_hex(std::string_view text);
// Hashes the file's contents, streaming. Throws q3vl::Error(io) naming the file
// if it cannot be opened or read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace q3vl::core
