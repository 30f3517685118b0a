#include "text/rust_call.h"

#include "q3vl/error.h"

namespace q3vl::text::rust {

std::string take_string(Q3vlTextBytes bytes) {
  std::string out(reinterpret_cast<const char*>(bytes.ptr), bytes.len);
  q3vl_text_bytes_free(bytes);
  return out;
}

std::vector<std::uint32_t> take_ids(Q3vlTextIds ids) {
  std::vector<std::uint32_t> out(ids.ptr, ids.ptr + ids.len);
  q3vl_text_ids_free(ids);
  return out;
}

void check(std::int32_t code, Q3vlTextError& err, const CallSite& site) {
  if (code == Q3VL_TEXT_OK) return;
  std::string message = take_string(err.message);
  err.message = {nullptr, 0};
  ErrorInfo info;
  info.file = site.file;
  info.field = site.field;
  switch (code) {
    case Q3VL_TEXT_IO:
      info.kind = ErrorKind::io;
      break;
    case Q3VL_TEXT_FORMAT:
    case Q3VL_TEXT_INVALID_UTF8:
    case Q3VL_TEXT_TEMPLATE_SYNTAX:
    case Q3VL_TEXT_TEMPLATE_RENDER:
      info.kind = ErrorKind::format;
      break;
    default:
      info.kind = ErrorKind::runtime;
      break;
  }
  if (err.line > 0) {
    info.field = "line " + std::to_string(err.line);
  }
  info.detail = std::move(message);
  throw Error(std::move(info));
}

}  // namespace q3vl::text::rust
