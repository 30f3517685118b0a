// q3vl.json <-> PackageManifest (include/q3vl/package.h). The JSON is written with
// 2-space indentation and keys in a fixed order, so the same manifest gives the same bytes.
#pragma once

#include <string>

#include "io/json_file.h"
#include "q3vl/package.h"

namespace q3vl::io {

Json manifest_to_json(const PackageManifest& manifest);
// `file` is used in error messages.
PackageManifest manifest_from_json(const Json& json, const std::string& file);

}  // namespace q3vl::io
