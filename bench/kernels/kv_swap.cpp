// kv_swap: a copy of a q3vl package whose decoder keeps its KV cache in the other dtype,
// for A/B runs of the SAME weights (building a second 4B package would take the disk and
// the time of another quantization).
//
//   kv_swap IN_PACKAGE OUT_PACKAGE
//
// Rewrites decoder.onnx only: every com.microsoft.GroupQueryAttention node becomes
// q3vl.KvAttention (float16 past/present) or back, and the past/present graph IO dtypes
// follow; attributes num_heads, kv_num_heads and scale are kept (builder/kv_attention.h
// writes exactly these). Every other file is hard-linked, q3vl.json gets the new
// kv_cache_dtype, decoder IO dtypes and file list. Bench tool: not a product path.
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "builder/package_files.h"
#include "io/json_file.h"
#include "io/manifest.h"
#include "q3vl/package.h"

namespace {

using namespace q3vl;

bool is_kv_name(const std::string& name) {
  return name.rfind("past_key_values.", 0) == 0 || name.rfind("present.", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: kv_swap IN_PACKAGE OUT_PACKAGE\n");
    return 2;
  }
  const std::filesystem::path in = argv[1], out = argv[2];
  PackageManifest m = load_package_manifest(in);
  const bool to_half = m.kv_cache_dtype == "float32";
  const std::string decoder_file = m.graph("decoder").file;
  std::filesystem::create_directories(out);
  for (const auto& entry : std::filesystem::directory_iterator(in)) {
    const auto name = entry.path().filename().string();
    if (name == decoder_file || name == "q3vl.json") continue;
    std::filesystem::create_hard_link(entry.path(), out / name);
  }
  onnx::ModelProto model;
  {
    std::ifstream file(in / decoder_file, std::ios::binary);
    if (!model.ParseFromIstream(&file)) {
      std::fprintf(stderr, "kv_swap: %s: not an ONNX model\n", (in / decoder_file).c_str());
      return 1;
    }
  }
  int nodes = 0;
  for (auto& node : *model.mutable_graph()->mutable_node()) {
    const bool gqa = node.op_type() == "GroupQueryAttention" && node.domain() == "com.microsoft";
    const bool q3vl = node.op_type() == "KvAttention" && node.domain() == "q3vl";
    if (!(to_half ? gqa : q3vl)) continue;
    ++nodes;
    node.set_op_type(to_half ? "KvAttention" : "GroupQueryAttention");
    node.set_domain(to_half ? "q3vl" : "com.microsoft");
    auto* attrs = node.mutable_attribute();
    for (int i = attrs->size() - 1; i >= 0; --i) {
      const std::string& a = attrs->Get(i).name();
      if (a == "do_rotary" || a == "head_dim") attrs->DeleteSubrange(i, 1);
    }
    auto* extra = node.add_attribute();
    extra->set_name(to_half ? "head_dim" : "do_rotary");
    extra->set_type(onnx::AttributeProto::INT);
    extra->set_i(to_half ? m.head_dim : 0);
  }
  bool imported = false;
  for (const auto& opset : model.opset_import()) imported |= opset.domain() == "q3vl";
  if (to_half && !imported) {
    auto* opset = model.add_opset_import();
    opset->set_domain("q3vl");
    opset->set_version(1);
  }
  const int dtype = to_half ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT;
  for (auto* list : {model.mutable_graph()->mutable_input(), model.mutable_graph()->mutable_output()}) {
    for (auto& value : *list) {
      if (is_kv_name(value.name())) value.mutable_type()->mutable_tensor_type()->set_elem_type(dtype);
    }
  }
  {
    std::ofstream file(out / decoder_file, std::ios::binary);
    model.SerializeToOstream(&file);
  }
  m.kv_cache_dtype = to_half ? "float16" : "float32";
  for (auto& graph : m.graphs) {
    if (graph.name != "decoder") continue;
    for (auto* list : {&graph.inputs, &graph.outputs}) {
      for (auto& t : *list) {
        if (is_kv_name(t.name)) t.dtype = m.kv_cache_dtype;
      }
    }
  }
  m.files = builder::list_package_files(out);
  io::write_json_file(out / "q3vl.json", io::manifest_to_json(m));
  std::printf("kv_swap: %s -> %s: %d attention nodes, KV cache %s\n", in.c_str(), out.c_str(), nodes,
              m.kv_cache_dtype.c_str());
  return 0;
}
