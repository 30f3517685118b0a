// probe_video / decode_video_frames (q3vl/video.h) over libavformat + libavcodec,
// with libswscale for YUV -> RGB configured as PyAV's frame.to_ndarray("rgb24")
// configures it (av/video/reformatter.py: SWS_BILINEAR, source matrix and range from
// the frame, RGB output full range).
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cstring>
#include <memory>

#include "io/image_codecs.h"
#include "q3vl/error.h"
#include "q3vl/video.h"

namespace q3vl {
namespace {

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

std::string av_message(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

struct OpenVideo {
  std::unique_ptr<AVFormatContext, FormatCloser> format;
  int stream = -1;
};

OpenVideo open_video(const std::filesystem::path& path) {
  io::quiet_ffmpeg_logging();
  if (!std::filesystem::is_regular_file(path)) throw_error(ErrorKind::io, path.string(), "no such file");
  if (std::filesystem::file_size(path) == 0) {
    throw_error(ErrorKind::format, path.string(), "video", "a video file", "an empty (zero-byte) file");
  }
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (rc < 0) throw_error(ErrorKind::format, path.string(), "not a readable video container: " + av_message(rc));
  OpenVideo v;
  v.format.reset(raw);
  rc = avformat_find_stream_info(raw, nullptr);
  if (rc < 0) throw_error(ErrorKind::format, path.string(), "cannot read stream info: " + av_message(rc));
  v.stream = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (v.stream < 0) throw_error(ErrorKind::format, path.string(), "the file has no video stream");
  return v;
}

}  // namespace

VideoMetadata probe_video(const std::filesystem::path& path) {
  OpenVideo v = open_video(path);
  const AVStream* st = v.format->streams[v.stream];
  VideoMetadata m;
  m.width = st->codecpar->width;
  m.height = st->codecpar->height;
  m.fps = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? av_q2d(st->avg_frame_rate) : 0.0;
  m.total_num_frames = st->nb_frames;
  if (m.total_num_frames <= 0) {  // not recorded by the container: count the packets
    std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
    std::int64_t count = 0;
    while (av_read_frame(v.format.get(), packet.get()) >= 0) {
      if (packet->stream_index == v.stream) ++count;
      av_packet_unref(packet.get());
    }
    m.total_num_frames = count;
  }
  return m;
}

std::vector<Image> decode_video_frames(const std::filesystem::path& path, const std::vector<std::int64_t>& indices,
                                       const ImageLimits& limits) {
  std::vector<Image> out(indices.size());
  decode_video_frames(path, indices, limits, [&](std::size_t position, Image image) { out[position] = std::move(image); });
  return out;
}

void decode_video_frames(const std::filesystem::path& path, const std::vector<std::int64_t>& indices,
                         const ImageLimits& limits, const std::function<void(std::size_t, Image)>& on_frame) {
  if (indices.empty()) return;
  if (!std::is_sorted(indices.begin(), indices.end()) || indices.front() < 0) {
    throw_error(ErrorKind::usage, path.string(), "frame indices", "ascending, non-negative", "unsorted or negative");
  }
  OpenVideo v = open_video(path);
  const AVStream* st = v.format->streams[v.stream];
  io::check_dimensions(st->codecpar->width, st->codecpar->height, limits, path.string());
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (codec == nullptr) {
    throw_error(ErrorKind::unsupported, path.string(), "video codec", "one this FFmpeg build decodes",
                avcodec_get_name(st->codecpar->codec_id));
  }
  std::unique_ptr<AVCodecContext, CodecCloser> ctx(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(ctx.get(), st->codecpar);
  ctx->max_pixels = limits.max_pixels;
  int rc = avcodec_open2(ctx.get(), codec, nullptr);
  if (rc < 0) throw_error(ErrorKind::format, path.string(), "cannot open the video decoder: " + av_message(rc));

  std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  std::unique_ptr<SwsContext, SwsFree> sws;
  std::vector<std::uint8_t> scratch;  // swscale's padded destination (see convert)
  std::size_t next = 0;
  std::int64_t frame_number = 0;

  auto convert = [&]() {
    io::check_dimensions(frame->width, frame->height, limits, path.string());
    const auto format = static_cast<AVPixelFormat>(frame->format);
    sws.reset(sws_getCachedContext(sws.release(), frame->width, frame->height, format, frame->width, frame->height,
                                   AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws) throw_error(ErrorKind::unsupported, path.string(), "cannot convert this pixel format to RGB");
    // The matrix and range the frame declares (unspecified -> BT.601, limited range).
    int* inv_table = nullptr;
    int* table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    if (sws_getColorspaceDetails(sws.get(), &inv_table, &src_range, &table, &dst_range, &brightness, &contrast,
                                 &saturation) >= 0) {
      const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
      const bool is_yuv = desc != nullptr && !(desc->flags & AV_PIX_FMT_FLAG_RGB) && desc->nb_components >= 3;
      if (is_yuv) {
        const bool full = frame->color_range == AVCOL_RANGE_JPEG || src_range == 1;
        sws_setColorspaceDetails(sws.get(), sws_getCoefficients(frame->colorspace), full ? 1 : 0, table, 1,
                                 brightness, contrast, saturation);
      }
    }
    Image image;
    image.width = frame->width;
    image.height = frame->height;
    // swscale's SIMD converters write whole vectors of pixels, past the end of a row
    // (long-run fuzz finding: 42 bytes past a 2x24 yuv420p frame's last row, a heap
    // overflow ASan saw only later as a corrupted chunk: FFmpeg is not instrumented). So
    // it writes into rows with 128 spare bytes (32 RGB pixels), the stride a multiple of
    // 64, and the rows are copied out tightly.
    const std::size_t row = static_cast<std::size_t>(image.width) * 3;
    const std::size_t stride = (row + 128 + 63) / 64 * 64;
    scratch.resize(stride * static_cast<std::size_t>(image.height));
    std::uint8_t* dst[4] = {scratch.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {static_cast<int>(stride), 0, 0, 0};
    sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
    image.rgb.resize(row * image.height);
    for (int y = 0; y < image.height; ++y) {
      std::memcpy(image.rgb.data() + row * y, scratch.data() + stride * y, row);
    }
    return image;
  };
  auto drain = [&]() {
    while (next < indices.size()) {
      rc = avcodec_receive_frame(ctx.get(), frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) throw_error(ErrorKind::format, path.string(), "video decoding failed: " + av_message(rc));
      if (indices[next] == frame_number) {
        Image image = convert();
        while (next + 1 < indices.size() && indices[next + 1] == frame_number) on_frame(next++, image);
        on_frame(next++, std::move(image));
      }
      ++frame_number;
      av_frame_unref(frame.get());
    }
  };

  while (next < indices.size()) {
    rc = av_read_frame(v.format.get(), packet.get());
    if (rc < 0) break;
    if (packet->stream_index == v.stream) {
      const int sent = avcodec_send_packet(ctx.get(), packet.get());
      av_packet_unref(packet.get());
      if (sent < 0 && sent != AVERROR(EAGAIN)) {
        throw_error(ErrorKind::format, path.string(), "corrupt video packet: " + av_message(sent));
      }
      drain();
    } else {
      av_packet_unref(packet.get());
    }
  }
  if (next < indices.size()) {
    avcodec_send_packet(ctx.get(), nullptr);  // flush delayed frames
    drain();
  }
  if (next < indices.size()) {
    throw_error(ErrorKind::format, path.string(), "frame " + std::to_string(indices[next]),
                "a decodable frame", "the stream ended after " + std::to_string(frame_number) + " frames");
  }
}

}  // namespace q3vl
