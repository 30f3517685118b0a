// SHA-256 against the FIPS 180-2 test vectors (appendix B), incrementally and
// from a file.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/sha256.h"
#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::core {
namespace {

constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* k448Bit = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr const char* kMillionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
constexpr const char* k448BitMessage = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(Sha256, Fips180Vectors) {
  EXPECT_EQ(sha256_hex(std::string_view("abc")), kAbc);
  EXPECT_EQ(sha256_hex(std::string_view("")), kEmpty);
  EXPECT_EQ(sha256_hex(std::string_view(k448BitMessage)), k448Bit);
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), kMillionA);
}

TEST(Sha256, IncrementalEqualsOneShot) {
  Sha256 hash;
  const std::string_view message(k448BitMessage);
  for (std::size_t at = 0; at < message.size(); at += 5) hash.update(message.substr(at, 5));
  EXPECT_EQ(hash.finish_hex(), k448Bit);
  try {
    hash.update(std::string_view("x"));
    ADD_FAILURE() << "update after finish_hex accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
}

TEST(Sha256, File) {
  const auto dir = q3vl::testing::work_dir() / "core-sha256";
  std::filesystem::create_directories(dir);
  const auto path = dir / "million-a.txt";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string(1000000, 'a');  // more than one 64 KiB read
  }
  EXPECT_EQ(sha256_file_hex(path), kMillionA);
  const auto empty = dir / "empty.txt";
  std::ofstream(empty, std::ios::trunc).close();
  EXPECT_EQ(sha256_file_hex(empty), kEmpty);
  try {
    sha256_file_hex(dir / "absent.txt");
    ADD_FAILURE() << "missing file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_EQ(e.info().file, (dir / "absent.txt").string());
  }
}

}  // namespace
}  // namespace q3vl::core
