// Small helpers for builder tests: scratch directories and running a graph in ONNX
// Runtime with plain std::vector inputs.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/ort_session.h"
#include "support/test_paths.h"

namespace q3vl::testing {

// A fresh, empty directory under the test work dir (removed and re-created).
inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = work_dir() / "builder" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Host tensors that own their data; to_ort() makes a non-owning Ort::Value view.
struct HostF32 {
  std::vector<float> data;
  std::vector<std::int64_t> shape;
};
struct HostI64 {
  std::vector<std::int64_t> data;
  std::vector<std::int64_t> shape;
};

inline Ort::MemoryInfo cpu_memory() {
  return Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
}
inline Ort::Value to_ort(HostF32& t) {
  return Ort::Value::CreateTensor<float>(cpu_memory(), t.data.data(), t.data.size(), t.shape.data(),
                                         t.shape.size());
}
inline Ort::Value to_ort(HostI64& t) {
  return Ort::Value::CreateTensor<std::int64_t>(cpu_memory(), t.data.data(), t.data.size(),
                                                t.shape.data(), t.shape.size());
}
inline HostF32 to_host(const Ort::Value& v) {
  HostF32 out;
  auto info = v.GetTensorTypeAndShapeInfo();
  out.shape = info.GetShape();
  const float* p = v.GetTensorData<float>();
  out.data.assign(p, p + info.GetElementCount());
  return out;
}

}  // namespace q3vl::testing
