// The web chat page served at GET / (src/server/chat_page.html, embedded at build time
// by src/server/CMakeLists.txt: no build step, no CDN, one static file).
#pragma once

#include <string>

namespace q3vl::server {

const std::string& chat_page_html();

}  // namespace q3vl::server
