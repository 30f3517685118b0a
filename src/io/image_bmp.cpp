// BMP through FFmpeg's libavcodec "bmp" decoder (no Debian image library reads BMP;
// torchvision refuses it, PIL reads it). The size is read from the header and checked
// against the limits before libavcodec sees the file; libswscale then converts the
// decoded frame (BGR, BGRA, palette, gray, 16-bit) to packed RGB / RGBA exactly.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cstdlib>
#include <mutex>
#include <cstring>
#include <memory>

#include "io/image_codecs.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

std::int32_t le32(const std::uint8_t* p) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                                   (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24));
}

std::string av_message(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

}  // namespace

void quiet_ffmpeg_logging() {
  // FFmpeg logs to stderr by default; library code must not print. Our errors carry
  // FFmpeg's message instead. (Process-wide, set once.)
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

RawImage decode_bmp(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  // BITMAPFILEHEADER (14 bytes) + at least the BITMAPINFOHEADER width/height fields.
  if (bytes.size() < 26) throw_corrupt(name, "BMP header shorter than 26 bytes");
  const std::uint32_t info_size = static_cast<std::uint32_t>(le32(&bytes[14]));
  std::int64_t width = 0, height = 0;
  bool ignore_alpha = false;
  if (info_size == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    width = bytes[18] | (bytes[19] << 8);
    height = bytes[20] | (bytes[21] << 8);
  } else {
    width = le32(&bytes[18]);
    height = std::llabs(static_cast<long long>(le32(&bytes[22])));  // negative = top-down rows
    // 32-bit BI_RGB: the 4th byte is padding, not alpha (PIL reads it as RGB; libavcodec
    // reports BGRA).
    if (bytes.size() >= 34) ignore_alpha = (bytes[28] | (bytes[29] << 8)) == 32 && le32(&bytes[30]) == 0;
  }
  check_dimensions(width, height, limits, name);
  // bfSize: libavcodec would decode a short file "anyway"; PIL calls it truncated.
  const auto declared = static_cast<std::uint32_t>(le32(&bytes[2]));
  if (declared > bytes.size()) {
    throw_corrupt(name, "BMP header declares " + std::to_string(declared) + " bytes, the input has " +
                            std::to_string(bytes.size()));
  }
  quiet_ffmpeg_logging();

  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_BMP);
  if (codec == nullptr) throw_error(ErrorKind::unsupported, name, "this FFmpeg build has no BMP decoder");
  std::unique_ptr<AVCodecContext, CodecContextDeleter> ctx(avcodec_alloc_context3(codec));
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
  if (!ctx || !frame || !packet) throw_corrupt(name, "cannot allocate the BMP decoder");
  ctx->max_pixels = limits.max_pixels;
  if (avcodec_open2(ctx.get(), codec, nullptr) < 0) throw_corrupt(name, "cannot open the BMP decoder");

  // libavcodec wants AV_INPUT_BUFFER_PADDING_SIZE zero bytes after the data.
  std::vector<std::uint8_t> padded(bytes.size() + AV_INPUT_BUFFER_PADDING_SIZE, 0);
  std::memcpy(padded.data(), bytes.data(), bytes.size());
  packet->data = padded.data();
  packet->size = static_cast<int>(bytes.size());
  int rc = avcodec_send_packet(ctx.get(), packet.get());
  if (rc >= 0) rc = avcodec_receive_frame(ctx.get(), frame.get());
  if (rc < 0) throw_corrupt(name, "BMP: " + av_message(rc));
  if (frame->width != width || frame->height != height) throw_corrupt(name, "BMP size differs from its header");

  const auto format = static_cast<AVPixelFormat>(frame->format);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
  const bool alpha = !ignore_alpha && desc != nullptr && (desc->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
  RawImage image;
  image.width = frame->width;
  image.height = frame->height;
  image.channels = alpha ? 4 : 3;
  image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * image.channels);
  std::unique_ptr<SwsContext, SwsDeleter> sws(sws_getContext(image.width, image.height, format, image.width, image.height,
                                                             alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24,
                                                             SWS_POINT | SWS_ACCURATE_RND | SWS_BITEXACT, nullptr, nullptr, nullptr));
  if (!sws) throw_error(ErrorKind::unsupported, name, "BMP pixel format", "a format libswscale converts to RGB",
                        desc != nullptr ? desc->name : "unknown");
  std::uint8_t* dst[4] = {image.pixels.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {image.width * image.channels, 0, 0, 0};
  sws_scale(sws.get(), frame->data, frame->linesize, 0, image.height, dst, dst_stride);
  return image;
}

}  // namespace q3vl::io
