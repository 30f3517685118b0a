// ServerOptions checks and the start-up listing of every limit the server enforces.
#pragma once

#include "q3vl/server.h"
#include "server/media_policy.h"

namespace q3vl::server {

// Throws q3vl::Error(usage) naming the flag of the first out-of-range option.
void check_options(const ServerOptions& options);
// The media part of the options (directories not yet resolved; MediaPolicy does it).
MediaLimits media_limits(const ServerOptions& options);
// Logs one line per limit (in options.log_format) before the server listens.
void print_limits(const ServerOptions& options);

}  // namespace q3vl::server
