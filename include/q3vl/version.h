// The q3vl version, recorded in packages and printed by `q3vl --version`.
#pragma once

namespace q3vl {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace q3vl
