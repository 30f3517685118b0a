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

// Long fuzz finding (chat_request): a messages key holding a NUL reached the server as a
// q3vl::Error whose what() stopped at the NUL, short of the rest of the field and message.
TEST(Error, NulInAPartIsWrittenOutSoWhatHoldsTheWholeMessage) {
  const std::string field = std::string("messages[0].r0") + '\0' + "0/x";
  try {
    throw_error(ErrorKind::format, "", field, "one of the keys role, content", "unknown key");
    FAIL() << "throw_error returned";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "messages[0].r0\\u00000/x: expected one of the keys role, content, got unknown key");
    EXPECT_EQ(e.info().field, field);
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
