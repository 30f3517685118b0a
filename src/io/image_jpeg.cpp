// JPEG through libjpeg-turbo, decoded as torchvision.io.decode_jpeg does: RGB output,
// libjpeg's defaults (islow IDCT, fancy upsampling), so pixels match the reference.
//
// libjpeg reports fatal errors through error_exit, which must not return. We longjmp
// back into the small C-style functions below; they hold no C++ objects with
// destructors between setjmp and any libjpeg call, so no destructor is skipped. The
// C++ side (RawImage, throwing) runs only after they have returned.
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>

#include "io/image_codecs.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

struct JpegError {
  jpeg_error_mgr mgr;  // first member: libjpeg hands us a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_fatal(j_common_ptr cinfo) {
  auto* error = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, error->message);
  std::longjmp(error->jump, 1);
}

// Warnings are silent, except a premature end of data: libjpeg would pad the missing
// rows with gray, we refuse truncated files instead.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) on_fatal(cinfo);
}

struct JpegDecoder {
  jpeg_decompress_struct cinfo;
  JpegError error;
  bool created = false;

  JpegDecoder() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&error.mgr);
    error.mgr.error_exit = on_fatal;
    error.mgr.emit_message = on_message;
    error.message[0] = '\0';
  }
  ~JpegDecoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;
};

bool read_header(JpegDecoder& d, const std::uint8_t* data, std::size_t size) {
  if (setjmp(d.error.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  jpeg_mem_src(&d.cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&d.cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&d.cinfo, TRUE);
  return true;
}

bool read_pixels(JpegDecoder& d, std::uint8_t* out, std::size_t row_bytes) {
  if (setjmp(d.error.jump)) return false;
  d.cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&d.cinfo);
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    JSAMPROW row = out + d.cinfo.output_scanline * row_bytes;
    jpeg_read_scanlines(&d.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

}  // namespace

RawImage decode_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  JpegDecoder d;
  if (!read_header(d, bytes.data(), bytes.size())) throw_corrupt(name, d.error.message);
  check_dimensions(d.cinfo.image_width, d.cinfo.image_height, limits, name);

  RawImage image;
  for (jpeg_saved_marker_ptr m = d.cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      image.exif.assign(m->data + 6, m->data + m->data_length);
      break;
    }
  }
  image.width = static_cast<int>(d.cinfo.image_width);
  image.height = static_cast<int>(d.cinfo.image_height);
  image.channels = 3;
  image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  if (!read_pixels(d, image.pixels.data(), static_cast<std::size_t>(image.width) * 3)) {
    throw_corrupt(name, d.error.message);
  }
  return image;
}

}  // namespace q3vl::io
