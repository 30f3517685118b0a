// The package manifest (q3vl.json): parse_json + manifest_from_json, as
// load_package_manifest does; an accepted manifest must write back to itself.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "harness.h"
#include "io/json_file.h"
#include "io/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  q3vl::fuzz::expect_clean([&] {
    const auto manifest = q3vl::io::manifest_from_json(q3vl::io::parse_json(text, "q3vl.json"), "q3vl.json");
    const auto written = q3vl::io::manifest_to_json(manifest);
    const auto again = q3vl::io::manifest_from_json(written, "written.json");
    q3vl::fuzz::require(q3vl::io::manifest_to_json(again) == written, "manifest round-trips");
  });
  return 0;
}
