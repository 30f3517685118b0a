// GIF through giflib: the first frame only, composed on the logical screen. giflib
// reports errors by return code (no longjmp). The transparent palette index of the
// first frame becomes alpha 0, so the caller's alpha policy applies to it.
#include <gif_lib.h>

#include <cstring>
#include <memory>

#include "io/image_codecs.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

struct MemoryReader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
};

int read_memory(GifFileType* gif, GifByteType* out, int length) {
  auto* reader = static_cast<MemoryReader*>(gif->UserData);
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(length), reader->size - reader->offset);
  std::memcpy(out, reader->data + reader->offset, n);
  reader->offset += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

[[noreturn]] void fail(const std::string& name, int error) {
  const char* text = GifErrorString(error);
  throw_corrupt(name, text != nullptr ? text : "giflib error " + std::to_string(error));
}

}  // namespace

RawImage decode_gif(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  MemoryReader reader{bytes.data(), bytes.size(), 0};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&reader, read_memory, &error));
  if (!gif) fail(name, error);
  check_dimensions(gif->SWidth, gif->SHeight, limits, name);

  RawImage image;
  image.width = gif->SWidth;
  image.height = gif->SHeight;
  image.channels = 4;
  image.pixels.assign(static_cast<std::size_t>(image.width) * image.height * 4, 0);
  const ColorMapObject* screen_map = gif->SColorMap;
  if (screen_map != nullptr && gif->SBackGroundColor < screen_map->ColorCount) {
    const GifColorType bg = screen_map->Colors[gif->SBackGroundColor];
    for (std::size_t i = 0; i < image.pixels.size(); i += 4) {
      image.pixels[i] = bg.Red, image.pixels[i + 1] = bg.Green, image.pixels[i + 2] = bg.Blue;
      image.pixels[i + 3] = 255;
    }
  }

  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) fail(name, gif->Error);
    if (type == TERMINATE_RECORD_TYPE) throw_corrupt(name, "GIF contains no image");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) fail(name, gif->Error);
      if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && ext[0] >= 4 && (ext[1] & 1)) transparent = ext[4];
      while (ext != nullptr) {
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) fail(name, gif->Error);
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;

    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) fail(name, gif->Error);
    const GifImageDesc& desc = gif->Image;
    if (desc.Width <= 0 || desc.Height <= 0) throw_corrupt(name, "GIF frame with zero size");
    check_dimensions(desc.Width, desc.Height, limits, name);
    const ColorMapObject* map = desc.ColorMap != nullptr ? desc.ColorMap : screen_map;
    if (map == nullptr) throw_corrupt(name, "GIF frame without a colour map");

    std::vector<GifPixelType> line(static_cast<std::size_t>(desc.Width));
    auto put_row = [&](int row) {
      const int y = desc.Top + row;
      if (y < 0 || y >= image.height) return;
      for (int i = 0; i < desc.Width; ++i) {
        const int x = desc.Left + i;
        if (x < 0 || x >= image.width) continue;
        std::uint8_t* px = &image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 4];
        const int index = line[i];
        const GifColorType color = index < map->ColorCount ? map->Colors[index] : GifColorType{0, 0, 0};
        px[0] = color.Red, px[1] = color.Green, px[2] = color.Blue;
        px[3] = index == transparent ? 0 : 255;
      }
    };
    auto read_row = [&](int row) {
      if (DGifGetLine(gif.get(), line.data(), desc.Width) == GIF_ERROR) fail(name, gif->Error);
      put_row(row);
    };
    if (desc.Interlace) {
      constexpr int kStart[4] = {0, 4, 2, 1};
      constexpr int kStep[4] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass) {
        for (int row = kStart[pass]; row < desc.Height; row += kStep[pass]) read_row(row);
      }
    } else {
      for (int row = 0; row < desc.Height; ++row) read_row(row);
    }
    return image;
  }
}

}  // namespace q3vl::io
