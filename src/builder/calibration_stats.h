// CalibrationStats: what each decoder matmul's input looked like on the calibration
// prompts, for GPTQ (builder/gptq.h).
//
// A calibration run appends, per weight (keyed by its graph scope, e.g.
// "model.language_model.layers.3.mlp.down_proj", or "lm_head"), the input rows x the
// matmul saw; hessian() turns them into H = sum x x^T when that weight is quantized.
// Rows go to one float32 file per weight under `dir`, not to memory: a 4B model's
// inputs over 2,000 tokens are ~5 GB, while H is only needed one weight at a time.
//
// Thread-safety: none. The directory is the caller's (the build's staging area).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace q3vl::builder {

// H = X^T X [width, width] row-major for rows X [rows.size() / width, width]: float32
// products over chunks of rows, summed in double (what hessian() computes from a file).
std::vector<double> gram(std::span<const float> rows, std::int64_t width);

class CalibrationStats {
 public:
  explicit CalibrationStats(std::filesystem::path dir);

  // Appends rows [rows.size() / width, width]. Throws q3vl::Error: usage (a width other
  // than this weight's earlier rows), io (the file cannot be written: names it).
  void append(const std::string& weight, std::span<const float> rows, std::int64_t width);

  bool contains(const std::string& weight) const { return entries_.count(weight) != 0; }
  std::int64_t rows(const std::string& weight) const;

  // H [width, width] row-major, the sum of x x^T over every row recorded for `weight`.
  // Throws q3vl::Error: usage (no rows for `weight`, or another width), io.
  std::vector<double> hessian(const std::string& weight, std::int64_t width) const;
  // Every row recorded for `weight`, [rows(weight), width] row-major, for statistics that
  // depend on each row (a MoE block's routing: builder/moe_calibration.h). Same errors.
  std::vector<float> inputs(const std::string& weight, std::int64_t width) const;

 private:
  struct Entry {
    std::filesystem::path file;
    std::int64_t width = 0;
    std::int64_t rows = 0;
  };
  const Entry& entry(const std::string& weight, std::int64_t width) const;

  std::filesystem::path dir_;
  std::map<std::string, Entry> entries_;
};

}  // namespace q3vl::builder
