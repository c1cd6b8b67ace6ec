// StopStringFilter: hold back possible stop-string prefixes, cut at the first match.
#include <gtest/gtest.h>

#include "runtime/scheduler_stop.h"

namespace hearth {
namespace test_scheduler_stop {

TEST(StopStringFilter, PassesTextThroughWithoutStops) {
  StopStringFilter f({});
  EXPECT_EQ(f.push("hello"), "hello");
  EXPECT_EQ(f.flush(), "");
  EXPECT_FALSE(f.matched());
}

TEST(StopStringFilter, HoldsBackAPossiblePrefixAndReleasesIt) {
  StopStringFilter f({"</end>"});
  EXPECT_EQ(f.push("abc</"), "abc");
  EXPECT_EQ(f.held(), 2u);
  EXPECT_EQ(f.push("b>"), "</b>");
  EXPECT_EQ(f.held(), 0u);
  EXPECT_EQ(f.push("x<"), "x");
  EXPECT_EQ(f.flush(), "<");  // end of generation: the held text is not a stop string
}

TEST(StopStringFilter, CutsAtAMatchSplitAcrossPushes) {
  StopStringFilter f({"STOP", "\n\n"});
  EXPECT_EQ(f.push("one S"), "one ");
  EXPECT_EQ(f.push("T"), "");
  EXPECT_EQ(f.push("OP and more"), "");
  EXPECT_TRUE(f.matched());
  EXPECT_EQ(f.push("later"), "");
  EXPECT_EQ(f.flush(), "");
}

TEST(StopStringFilter, EarliestMatchOfSeveralWins) {
  StopStringFilter f({"cd", "b"});
  EXPECT_EQ(f.push("abcd"), "a");
  EXPECT_TRUE(f.matched());
}

TEST(StopStringFilter, EmptyStopStringsAreIgnored) {
  StopStringFilter f({""});
  EXPECT_EQ(f.push("abc"), "abc");
  EXPECT_FALSE(f.matched());
}

}  // namespace test_scheduler_stop
}  // namespace hearth
