#include <gtest/gtest.h>

#include "q3vl/error.h"

namespace q3vl {
namespace {

TEST(Error, MessageNamesFileFieldExpectedAndGot) {
  try {
    throw_error(ErrorKind::config, "config.json", "vision_config.spatial_merge_size",
                "positive integer", "0");
    FAIL() << "throw_error returned";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "config.json: vision_config.spatial_merge_size: expected positive integer, got 0");
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.info().field, "vision_config.spatial_merge_size");
  }
}

TEST(Error, DetailOnlyMessage) {
  try {
    throw_error(ErrorKind::io, "/tmp/x.safetensors", "file is truncated");
    FAIL() << "throw_error returned";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/tmp/x.safetensors: file is truncated");
    EXPECT_EQ(e.kind(), ErrorKind::io);
  }
}

TEST(Error, EmptyInfoStillSaysWhatKind) {
  Error e(ErrorInfo{ErrorKind::limit});
  EXPECT_STREQ(e.what(), "limit error");
}

}  // namespace
}  // namespace q3vl

namespace q3vl {
namespace {

TEST(Error, FieldWithDetail) {
  try {
    throw_error(ErrorKind::format, "model.safetensors", "model.norm.weight", "data offsets overlap another tensor");
    FAIL() << "throw_error returned";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model.safetensors: model.norm.weight: data offsets overlap another tensor");
    EXPECT_EQ(e.info().field, "model.norm.weight");
  }
}

}  // namespace
}  // namespace q3vl
