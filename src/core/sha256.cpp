#include "core/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "q3vl/error.h"

namespace q3vl::core {
namespace {

struct ContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

[[noreturn]] void throw_openssl(const char* call) {
  throw_error(ErrorKind::runtime, "", "sha256", std::string("OpenSSL ") + call + " failed");
}

}  // namespace

struct Sha256::Impl {
  std::unique_ptr<EVP_MD_CTX, ContextDeleter> context;
  bool finished = false;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->context.reset(EVP_MD_CTX_new());
  if (!impl_->context) throw_openssl("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(impl_->context.get(), EVP_sha256(), nullptr) != 1) {
    throw_openssl("EVP_DigestInit_ex");
  }
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::byte> data) {
  if (!impl_ || impl_->finished) throw_error(ErrorKind::usage, "", "Sha256::update after finish_hex");
  if (EVP_DigestUpdate(impl_->context.get(), data.data(), data.size()) != 1) {
    throw_openssl("EVP_DigestUpdate");
  }
}

void Sha256::update(std::string_view text) { update(std::as_bytes(std::span(text))); }

std::string Sha256::finish_hex() {
  if (!impl_ || impl_->finished) throw_error(ErrorKind::usage, "", "Sha256::finish_hex called twice");
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(impl_->context.get(), digest.data(), &length) != 1) {
    throw_openssl("EVP_DigestFinal_ex");
  }
  impl_->finished = true;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xF];
  }
  return hex;
}

std::string sha256_hex(std::span<const std::byte> data) {
  Sha256 hash;
  hash.update(data);
  return hash.finish_hex();
}

std::string sha256_hex(std::string_view text) { return sha256_hex(std::as_bytes(std::span(text))); }

std::string sha256_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw_error(ErrorKind::io, path.string(), std::string("cannot open: ") + std::strerror(errno));
  }
  Sha256 hash;
  std::array<char, 1 << 16> buffer;
  while (in) {
    in.read(buffer.data(), buffer.size());
    hash.update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) throw_error(ErrorKind::io, path.string(), "read failed");
  return hash.finish_hex();
}

}  // namespace q3vl::core
