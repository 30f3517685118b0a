// Error-path assertions: run code that must fail with a q3vl::Error of a given kind.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "q3vl/error.h"

namespace q3vl::testing {

// Runs `body`, expects a q3vl::Error of `kind`, and returns its message (for the caller's
// checks that it names the file, field and expected value).
template <typename Body>
std::string error_message(ErrorKind kind, Body body) {
  try {
    body();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no q3vl::Error thrown";
  return {};
}

}  // namespace q3vl::testing
