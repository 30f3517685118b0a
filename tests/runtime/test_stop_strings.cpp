#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/stop_strings.h"

namespace q3vl::runtime {
namespace {

// Streams `pieces` through a matcher; returns (released text, stopped).
std::pair<std::string, bool> stream(const std::vector<std::string>& stops,
                                    const std::vector<std::string>& pieces) {
  StopStringMatcher m(stops);
  std::string out;
  for (const auto& p : pieces) {
    auto r = m.push(p);
    out += r.releasable;
    if (r.stopped) return {out, true};
  }
  out += m.flush();
  return {out, false};
}

TEST(StopStrings, NoStopsPassesEverythingThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.push("abc").releasable, "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, StopInsideOnePieceTruncatesBeforeIt) {
  EXPECT_EQ(stream({"END"}, {"hello END world"}), std::make_pair(std::string("hello "), true));
}

TEST(StopStrings, StopSpanningPiecesIsFoundAndNotReleasedEarly) {
  StopStringMatcher m({"<stop>"});
  auto r1 = m.push("abc<st");
  EXPECT_EQ(r1.releasable, "abc");  // "<st" may be the start of "<stop>"
  EXPECT_FALSE(r1.stopped);
  auto r2 = m.push("op>tail");
  EXPECT_EQ(r2.releasable, "");
  EXPECT_TRUE(r2.stopped);
}

TEST(StopStrings, HeldBackTextIsReleasedWhenItCannotMatch) {
  StopStringMatcher m({"<stop>"});
  EXPECT_EQ(m.push("a<s").releasable, "a");
  EXPECT_EQ(m.push("x").releasable, "<sx");
  EXPECT_EQ(m.push("<").releasable, "");
  EXPECT_EQ(m.flush(), "<");
}

TEST(StopStrings, EarliestOfSeveralStopsWins) {
  EXPECT_EQ(stream({"world", "lo w"}, {"hel", "lo wor", "ld"}), std::make_pair(std::string("hel"), true));
}

TEST(StopStrings, OneCharacterAtATime) {
  std::vector<std::string> pieces;
  for (char c : std::string("The answer is 42.\n\nUser: more")) pieces.emplace_back(1, c);
  EXPECT_EQ(stream({"\n\nUser:"}, pieces), std::make_pair(std::string("The answer is 42."), true));
}

TEST(StopStrings, NeverSplitsAUtf8Character) {
  // Stop string begins with the second byte sequence of "é" (0xC3 0xA9)? No: it
  // starts with 0xA9, a continuation byte, so holding must move to a boundary.
  const std::string e_acute = "\xC3\xA9";
  StopStringMatcher m({std::string("\xA9!")});
  auto r = m.push("caf" + e_acute);
  // Releasing "caf\xC3" would cut the character: the whole "é" is held.
  EXPECT_EQ(r.releasable, "caf");
  EXPECT_EQ(m.flush(), e_acute);
}

TEST(StopStrings, AfterStopNothingMoreIsReleased) {
  StopStringMatcher m({"x"});
  EXPECT_TRUE(m.push("axb").stopped);
  auto r = m.push("more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.releasable, "");
  EXPECT_EQ(m.flush(), "");
}

}  // namespace
}  // namespace q3vl::runtime
