// SafetensorsWriter: header from the specs, then the data streamed through a
// small buffer into "<path>.tmp", renamed on finish().
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "q3vl/error.h"

namespace q3vl::io {

std::uint64_t TensorSpec::byte_size() const {
  std::uint64_t bytes = dtype_size(dtype);
  for (const std::int64_t dim : shape) {
    if (dim < 0) {
      throw_error(ErrorKind::usage, "", name + ".shape", "non-negative dimensions",
                  std::to_string(dim));
    }
    if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes)) {
      throw_error(ErrorKind::usage, "", name + ".shape", "a byte size below 2^64", "overflow");
    }
  }
  return bytes;
}

namespace {

constexpr std::size_t kBufferBytes = 1 << 20;

// The header bytes (length prefix included) the reference writer would produce
// for these specs in this order: compact JSON, "__metadata__" first, each entry's
// keys in the order dtype, shape, data_offsets, padded with spaces to 8 bytes.
std::string make_header(const std::vector<TensorSpec>& specs,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const TensorSpec& spec : specs) {
    const std::uint64_t end = offset + spec.byte_size();
    if (end < offset) {
      throw_error(ErrorKind::usage, "", spec.name, "a total size below 2^64", "overflow");
    }
    header[spec.name] = {{"dtype", dtype_name(spec.dtype)},
                         {"shape", spec.shape},
                         {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
  return bytes + json;
}

}  // namespace

struct SafetensorsWriter::Impl {
  std::filesystem::path path;
  std::filesystem::path temp_path;
  std::vector<TensorSpec> specs;
  std::vector<std::uint64_t> sizes;
  std::size_t current = 0;        // the spec receiving bytes
  std::uint64_t written = 0;      // bytes of specs[current] so far
  int fd = -1;
  bool failed = false;
  bool finished = false;
  std::vector<std::byte> buffer;

  ~Impl() {
    if (fd >= 0) ::close(fd);
    if (!finished) ::unlink(temp_path.c_str());
  }

  [[noreturn]] void fail_usage(const std::string& field, const std::string& expected,
                               const std::string& got) {
    failed = true;
    throw_error(ErrorKind::usage, path.string(), field, expected, got);
  }

  [[noreturn]] void fail_io(const std::string& what, int error) {
    failed = true;
    throw_error(ErrorKind::io, path.string(), what + ": " + std::strerror(error));
  }

  void write_fully(const std::byte* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = ::write(fd, data, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_io("writing " + temp_path.string(), errno);
      }
      data += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  void flush() {
    write_fully(buffer.data(), buffer.size());
    buffer.clear();
  }

  void append(const std::byte* data, std::size_t size) {
    if (buffer.size() + size > kBufferBytes) flush();
    if (size >= kBufferBytes) {
      write_fully(data, size);
    } else {
      buffer.insert(buffer.end(), data, data + size);
    }
  }

  // Moves past finished tensors (zero-byte ones need no write() call).
  void skip_complete_unless(const std::string& name) {
    while (current < specs.size() && written == sizes[current] && specs[current].name != name) {
      ++current;
      written = 0;
    }
  }
};

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path, std::vector<TensorSpec> specs,
                                     std::map<std::string, std::string> metadata)
    : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.path = std::move(path);
  w.temp_path = w.path;
  w.temp_path += ".tmp";
  w.finished = true;  // nothing to remove until the temp file exists
  std::set<std::string> names;
  for (const TensorSpec& spec : specs) {
    if (spec.name.empty() || spec.name == "__metadata__" || !names.insert(spec.name).second) {
      throw_error(ErrorKind::usage, w.path.string(), "tensor name",
                  "unique, non-empty names other than __metadata__", "\"" + spec.name + "\"");
    }
    w.sizes.push_back(spec.byte_size());
  }
  const std::string header = make_header(specs, metadata);
  w.specs = std::move(specs);

  w.fd = ::open(w.temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd < 0) w.fail_io("cannot create " + w.temp_path.string(), errno);
  w.finished = false;
  w.buffer.reserve(kBufferBytes);
  w.append(reinterpret_cast<const std::byte*>(header.data()), header.size());
}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::write(const std::string& name, std::span<const std::byte> data) {
  Impl& w = *impl_;
  if (w.failed || w.finished) {
    throw_error(ErrorKind::usage, w.path.string(), name,
                w.finished ? "no write after finish()" : "no write after a failed write");
  }
  w.skip_complete_unless(name);
  if (w.current == w.specs.size()) {
    w.fail_usage(name, "no more data (every tensor is complete)", std::to_string(data.size()) +
                                                                      " more bytes");
  }
  const TensorSpec& spec = w.specs[w.current];
  if (spec.name != name) {
    w.fail_usage(name, "bytes of tensor '" + spec.name + "' next (spec order)",
                 "bytes of '" + name + "'");
  }
  if (data.size() > w.sizes[w.current] - w.written) {
    w.fail_usage(name, std::to_string(w.sizes[w.current]) + " bytes in total",
                 std::to_string(w.written + data.size()));
  }
  w.append(data.data(), data.size());
  w.written += data.size();
}

void SafetensorsWriter::finish() {
  Impl& w = *impl_;
  if (w.failed || w.finished) {
    throw_error(ErrorKind::usage, w.path.string(),
                w.finished ? "finish() called twice" : "finish() after a failed write");
  }
  w.skip_complete_unless("");
  if (w.current != w.specs.size()) {
    w.fail_usage(w.specs[w.current].name, std::to_string(w.sizes[w.current]) + " bytes",
                 std::to_string(w.written) + " before finish()");
  }
  w.flush();
  const int fd = std::exchange(w.fd, -1);
  if (::close(fd) != 0) w.fail_io("closing " + w.temp_path.string(), errno);
  if (std::rename(w.temp_path.c_str(), w.path.c_str()) != 0) {
    w.fail_io("renaming " + w.temp_path.string(), errno);
  }
  w.finished = true;
}

}  // namespace q3vl::io
