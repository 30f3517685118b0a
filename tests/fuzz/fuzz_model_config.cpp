// config.json in both layouts (transformers 4.57 rope_scaling, 5.x rope_parameters):
// parse_model_config, then the writer must round-trip what the parser accepted.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "harness.h"
#include "q3vl/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  q3vl::fuzz::expect_clean([&] {
    const q3vl::ModelConfig config = q3vl::parse_model_config(text, "config.json");
    for (const auto layout : {q3vl::ConfigLayout::rope_scaling, q3vl::ConfigLayout::rope_parameters}) {
      q3vl::ModelConfig again = q3vl::parse_model_config(q3vl::to_config_json(config, layout), "written.json");
      q3vl::fuzz::require(again.layout == layout, "the written layout is read back");
      q3vl::ModelConfig expected = config;
      expected.layout = layout;
      // The Hub layout has no place for the vision rope theta (transformers 4.57 hard-codes
      // 10000), as tests/io/test_config.cpp RoundTripsThroughBothLayouts states.
      if (layout == q3vl::ConfigLayout::rope_scaling) expected.vision.rope_theta = q3vl::VisionConfig{}.rope_theta;
      q3vl::fuzz::require(again == expected, "to_config_json round-trips an accepted config");
    }
  });
  return 0;
}
