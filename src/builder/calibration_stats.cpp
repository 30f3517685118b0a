#include "builder/calibration_stats.h"

#include <algorithm>
#include <fstream>

#include "builder/blas.h"
#include "q3vl/error.h"

namespace q3vl::builder {

CalibrationStats::CalibrationStats(std::filesystem::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw_error(ErrorKind::io, dir_.string(), "", "a writable directory", ec.message());
}

void CalibrationStats::append(const std::string& weight, std::span<const float> rows, std::int64_t width) {
  if (width <= 0 || rows.size() % static_cast<std::size_t>(width) != 0) {
    throw_error(ErrorKind::usage, "", weight, "rows of " + std::to_string(width) + " values",
                std::to_string(rows.size()) + " values");
  }
  auto [it, fresh] = entries_.try_emplace(weight);
  Entry& e = it->second;
  if (fresh) {
    e.file = dir_ / (weight + ".f32");
    e.width = width;
  } else if (e.width != width) {
    throw_error(ErrorKind::usage, "", weight, "rows of " + std::to_string(e.width) + " values",
                std::to_string(width));
  }
  std::ofstream out(e.file, std::ios::binary | std::ios::app);
  out.write(reinterpret_cast<const char*>(rows.data()), static_cast<std::streamsize>(rows.size_bytes()));
  if (!out) throw_error(ErrorKind::io, e.file.string(), "", "a writable file (disk full?)", "write failed");
  e.rows += static_cast<std::int64_t>(rows.size()) / width;
}

std::int64_t CalibrationStats::rows(const std::string& weight) const {
  const auto it = entries_.find(weight);
  return it == entries_.end() ? 0 : it->second.rows;
}

namespace {

// Rows per BLAS product: bounds the float32 sums (each chunk's products are added to the
// double total) and the memory a file read needs.
constexpr std::int64_t kChunk = 1024;

// h += the upper triangle of X^T X for `count` rows X [count, width] (BLAS syrk in float32,
// accumulated in double); `product` is scratch of width * width.
void add_gram(const float* rows, std::int64_t count, std::int64_t width, std::vector<float>& product,
              std::vector<double>& h) {
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(width), static_cast<int>(count), 1.0f, rows,
              static_cast<int>(width), 0.0f, product.data(), static_cast<int>(width));
  for (std::int64_t i = 0; i < width; ++i) {
    for (std::int64_t j = i; j < width; ++j) h[i * width + j] += product[i * width + j];
  }
}

void mirror_upper(std::vector<double>& h, std::int64_t width) {
  for (std::int64_t i = 0; i < width; ++i) {
    for (std::int64_t j = 0; j < i; ++j) h[i * width + j] = h[j * width + i];
  }
}

}  // namespace

std::vector<double> gram(std::span<const float> rows, std::int64_t width) {
  if (width <= 0 || rows.size() % static_cast<std::size_t>(width) != 0) {
    throw_error(ErrorKind::usage, "", "gram", "rows of " + std::to_string(width) + " values",
                std::to_string(rows.size()) + " values");
  }
  const auto n = static_cast<std::int64_t>(rows.size()) / width;
  std::vector<double> h(static_cast<std::size_t>(width * width), 0.0);
  std::vector<float> product(static_cast<std::size_t>(width * width));
  for (std::int64_t done = 0; done < n; done += kChunk) {
    add_gram(rows.data() + done * width, std::min(kChunk, n - done), width, product, h);
  }
  mirror_upper(h, width);
  return h;
}

const CalibrationStats::Entry& CalibrationStats::entry(const std::string& weight, std::int64_t width) const {
  const auto it = entries_.find(weight);
  if (it == entries_.end() || it->second.rows == 0) {
    throw_error(ErrorKind::usage, "", weight, "calibration inputs recorded for this weight", "none");
  }
  if (it->second.width != width) {
    throw_error(ErrorKind::usage, "", weight, "inputs of width " + std::to_string(width),
                std::to_string(it->second.width));
  }
  return it->second;
}

std::vector<double> CalibrationStats::hessian(const std::string& weight, std::int64_t width) const {
  const Entry& e = entry(weight, width);
  std::vector<double> h(static_cast<std::size_t>(width * width), 0.0);
  std::ifstream in(e.file, std::ios::binary);
  std::vector<float> chunk, product(static_cast<std::size_t>(width * width));
  for (std::int64_t done = 0; done < e.rows; done += kChunk) {
    const std::int64_t count = std::min(kChunk, e.rows - done);
    chunk.resize(static_cast<std::size_t>(count * width));
    in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(chunk.size() * sizeof(float)));
    if (!in) throw_error(ErrorKind::io, e.file.string(), "", std::to_string(e.rows) + " rows", "a short read");
    add_gram(chunk.data(), count, width, product, h);
  }
  mirror_upper(h, width);
  return h;
}

std::vector<float> CalibrationStats::inputs(const std::string& weight, std::int64_t width) const {
  const Entry& e = entry(weight, width);
  std::vector<float> rows(static_cast<std::size_t>(e.rows * width));
  std::ifstream in(e.file, std::ios::binary);
  in.read(reinterpret_cast<char*>(rows.data()), static_cast<std::streamsize>(rows.size() * sizeof(float)));
  if (!in) throw_error(ErrorKind::io, e.file.string(), "", std::to_string(e.rows) + " rows", "a short read");
  return rows;
}

}  // namespace q3vl::builder
