// eval-kl's reference logits file (load_kl_reference, bench/kl_reference.cpp): the bytes go
// to a file, as `q3vl eval-kl --reference-logits FILE` reads it. Any rejection must be a
// q3vl::Error; an accepted file must save and load back to the same fields and logits.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <string>

#include "harness.h"
#include "q3vl/quality.h"

namespace {

const std::filesystem::path& scratch(const char* name) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("q3vl-fuzz-kl-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  static const std::filesystem::path in = dir / "in.kl", out = dir / "out.kl";
  return std::string(name) == "in" ? in : out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream f(scratch("in"), std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  q3vl::fuzz::expect_clean([&] {
    const q3vl::KlReference r = q3vl::load_kl_reference(scratch("in"));
    q3vl::fuzz::require(r.positions() * r.vocab_size == static_cast<std::int64_t>(r.logits.size()),
                        "accepted: logits hold positions x vocab_size");
    q3vl::save_kl_reference(r, scratch("out"));
    const q3vl::KlReference again = q3vl::load_kl_reference(scratch("out"));
    q3vl::fuzz::require(again.context == r.context && again.chunks == r.chunks && again.vocab_size == r.vocab_size &&
                            again.fingerprint == r.fingerprint && again.text_fingerprint == r.text_fingerprint &&
                            again.images.size() == r.images.size() && again.package.path == r.package.path,
                        "accepted: the header round-trips");
    q3vl::fuzz::require(again.logits.size() == r.logits.size() &&
                            std::equal(again.logits.begin(), again.logits.end(), r.logits.begin(),
                                       [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }),
                        "accepted: the logits round-trip bit for bit");
  });
  return 0;
}
