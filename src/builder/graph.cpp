#include "builder/graph.h"

#include <onnx/onnx_pb.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

#include "builder/external_data.h"
#include "q3vl/error.h"
#include "q3vl/version.h"

namespace q3vl::builder {
namespace {

constexpr std::int64_t kIrVersion = 10;
constexpr std::int64_t kOnnxOpset = 21;
constexpr std::int64_t kMicrosoftOpset = 1;

int onnx_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return onnx::TensorProto::FLOAT;
    case DType::f16: return onnx::TensorProto::FLOAT16;
    case DType::bf16: return onnx::TensorProto::BFLOAT16;
    case DType::f64: return onnx::TensorProto::DOUBLE;
    case DType::i64: return onnx::TensorProto::INT64;
    case DType::i32: return onnx::TensorProto::INT32;
    case DType::i16: return onnx::TensorProto::INT16;
    case DType::i8: return onnx::TensorProto::INT8;
    case DType::u8: return onnx::TensorProto::UINT8;
    case DType::boolean: return onnx::TensorProto::BOOL;
  }
  return onnx::TensorProto::UNDEFINED;
}

void set_value_info(onnx::ValueInfoProto* info, const std::string& name, DType dtype,
                    const Shape& shape) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx_type(dtype));
  auto* dims = tensor->mutable_shape();
  for (const Dim& dim : shape) {
    auto* d = dims->add_dim();
    if (dim.symbolic()) d->set_dim_param(dim.param);
    else d->set_dim_value(dim.value);
  }
}

void set_attr(onnx::AttributeProto* attr, const Attr& a) {
  attr->set_name(a.name);
  std::visit(
      [attr](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::int64_t>) {
          attr->set_type(onnx::AttributeProto::INT);
          attr->set_i(v);
        } else if constexpr (std::is_same_v<T, float>) {
          attr->set_type(onnx::AttributeProto::FLOAT);
          attr->set_f(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          attr->set_type(onnx::AttributeProto::STRING);
          attr->set_s(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
          attr->set_type(onnx::AttributeProto::INTS);
          for (auto x : v) attr->add_ints(x);
        } else {
          attr->set_type(onnx::AttributeProto::FLOATS);
          for (auto x : v) attr->add_floats(x);
        }
      },
      a.data);
}

std::string join_i64(const std::vector<std::int64_t>& values) {
  std::string text;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) text += ',';
    text += std::to_string(values[i]);
  }
  return text;
}

}  // namespace

struct Graph::Impl {
  std::string name;
  std::filesystem::path weights_path;
  ExternalDataWriter weights;
  onnx::ModelProto model;
  onnx::GraphProto* graph = nullptr;
  std::vector<std::string> scopes;
  std::string scope_path;
  std::set<std::string> defined;             // every value name the graph defines
  std::map<std::string, int> node_names;     // base node name -> uses
  std::map<std::string, int> producer;       // node output name -> node index
  std::set<std::string> graph_inputs;
  std::set<std::string> constants;
  std::vector<GraphTensor> inputs;
  std::vector<GraphTensor> outputs;
  bool saved = false;

  Impl(std::string n, std::filesystem::path path)
      : name(std::move(n)), weights_path(path), weights(std::move(path)) {
    graph = model.mutable_graph();
    graph->set_name(name);
  }

  void define(const std::string& value_name) {
    if (value_name.empty()) throw_error(ErrorKind::usage, name, "a value needs a name");
    if (!defined.insert(value_name).second) {
      throw_error(ErrorKind::usage, name, value_name, "a unique value name", "a duplicate");
    }
  }

  void rebuild_scope_path() {
    scope_path.clear();
    for (const auto& part : scopes) {
      if (!scope_path.empty()) scope_path += '.';
      scope_path += part;
    }
  }
};

Graph::Graph(std::string name, std::filesystem::path weights_path)
    : impl_(std::make_unique<Impl>(std::move(name), std::move(weights_path))) {}
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

const std::string& Graph::name() const { return impl_->name; }
std::uint64_t Graph::weight_bytes() const { return impl_->weights.size(); }

Value Graph::input(const std::string& name, DType dtype, const Shape& shape) {
  impl_->define(name);
  impl_->graph_inputs.insert(name);
  impl_->inputs.push_back(GraphTensor{name, dtype, shape});
  set_value_info(impl_->graph->add_input(), name, dtype, shape);
  return Value{name};
}

void Graph::output(const Value& value, const std::string& name, DType dtype, const Shape& shape) {
  if (!impl_->defined.count(value.name)) {
    throw_error(ErrorKind::usage, impl_->name, name, "an output defined in the graph",
                "undefined value " + value.name);
  }
  for (const auto& out : impl_->graph->output()) {
    if (out.name() == name) throw_error(ErrorKind::usage, impl_->name, name, "a unique output name", "a duplicate");
  }
  auto it = impl_->producer.find(value.name);
  if (value.name == name) {
    // Already named as wanted (e.g. a node output created under this name).
  } else if (it != impl_->producer.end() && !impl_->defined.count(name)) {
    // Rename the node output in place, and every consumer added so far.
    auto* node = impl_->graph->mutable_node(it->second);
    for (auto& out : *node->mutable_output()) {
      if (out == value.name) out = name;
    }
    for (auto& n : *impl_->graph->mutable_node()) {
      for (auto& in : *n.mutable_input()) {
        if (in == value.name) in = name;
      }
    }
    for (auto& out : *impl_->graph->mutable_output()) {
      if (out.name() == value.name) out.set_name(name);
    }
    const int index = it->second;
    impl_->producer.erase(it);
    impl_->producer[name] = index;
    impl_->defined.erase(value.name);
    impl_->defined.insert(name);
  } else {
    impl_->define(name);
    auto* node = impl_->graph->add_node();
    node->set_op_type("Identity");
    node->set_name(name + "/Identity");
    node->add_input(value.name);
    node->add_output(name);
    impl_->producer[name] = impl_->graph->node_size() - 1;
  }
  set_value_info(impl_->graph->add_output(), name, dtype, shape);
  impl_->outputs.push_back(GraphTensor{name, dtype, shape});
}

const std::vector<GraphTensor>& Graph::inputs() const { return impl_->inputs; }
const std::vector<GraphTensor>& Graph::outputs() const { return impl_->outputs; }

Value Graph::initializer(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
                         std::span<const std::byte> data) {
  std::uint64_t numel = 1;
  for (auto d : shape) {
    if (d < 0) throw_error(ErrorKind::usage, impl_->name, name, "non-negative dims", "a negative dim");
    numel *= static_cast<std::uint64_t>(d);
  }
  const std::uint64_t expected = numel * io::dtype_size(dtype);
  if (expected != data.size()) {
    throw_error(ErrorKind::usage, impl_->name, name, std::to_string(expected) + " bytes",
                std::to_string(data.size()) + " bytes");
  }
  impl_->define(name);
  auto* tensor = impl_->graph->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx_type(dtype));
  for (auto d : shape) tensor->add_dims(d);
  if (data.size() < kInlineLimitBytes) {
    tensor->set_raw_data(data.data(), data.size());
  } else {
    const std::uint64_t alignment = data.size() >= kAlignLargeBytes ? kAlignment : 64;
    const std::uint64_t offset = impl_->weights.append(name, data, alignment);
    tensor->set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [tensor](const char* key, const std::string& value) {
      auto* entry = tensor->add_external_data();
      entry->set_key(key);
      entry->set_value(value);
    };
    add("location", impl_->weights_path.filename().string());
    add("offset", std::to_string(offset));
    add("length", std::to_string(data.size()));
  }
  return Value{name};
}

Value Graph::initializer_streamed(const std::string& name, DType dtype,
                                  const std::vector<std::int64_t>& shape,
                                  const std::function<void(const InitializerSink&)>& produce) {
  std::uint64_t numel = 1;
  for (auto d : shape) {
    if (d < 0) throw_error(ErrorKind::usage, impl_->name, name, "non-negative dims", "a negative dim");
    numel *= static_cast<std::uint64_t>(d);
  }
  const std::uint64_t expected = numel * io::dtype_size(dtype);
  impl_->define(name);
  std::uint64_t offset = 0, written = 0;
  produce([&](std::span<const std::byte> part) {
    if (written + part.size() > expected) {
      throw_error(ErrorKind::usage, impl_->name, name, std::to_string(expected) + " bytes",
                  "more than that in its parts");
    }
    // The first part sets the (aligned) offset; the rest follow it contiguously.
    const std::uint64_t at = impl_->weights.append(name, part, written == 0 ? kAlignment : 1);
    if (written == 0) offset = at;
    written += part.size();
  });
  if (written != expected) {
    throw_error(ErrorKind::usage, impl_->name, name, std::to_string(expected) + " bytes",
                std::to_string(written) + " bytes in its parts");
  }
  auto* tensor = impl_->graph->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx_type(dtype));
  for (auto d : shape) tensor->add_dims(d);
  tensor->set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [key, value] : {std::pair<const char*, std::string>{"location", impl_->weights_path.filename().string()},
                                   {"offset", std::to_string(offset)},
                                   {"length", std::to_string(expected)}}) {
    auto* entry = tensor->add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  }
  return Value{name};
}

Value Graph::initializer_f32(const std::string& name, const std::vector<std::int64_t>& shape,
                             std::span<const float> data) {
  return initializer(name, DType::f32, shape, std::as_bytes(data));
}
Value Graph::initializer_f16(const std::string& name, const std::vector<std::int64_t>& shape,
                             std::span<const std::uint16_t> data) {
  return initializer(name, DType::f16, shape, std::as_bytes(data));
}
Value Graph::initializer_i64(const std::string& name, const std::vector<std::int64_t>& shape,
                             std::span<const std::int64_t> data) {
  return initializer(name, DType::i64, shape, std::as_bytes(data));
}
Value Graph::initializer_i32(const std::string& name, const std::vector<std::int64_t>& shape,
                             std::span<const std::int32_t> data) {
  return initializer(name, DType::i32, shape, std::as_bytes(data));
}
Value Graph::initializer_u8(const std::string& name, const std::vector<std::int64_t>& shape,
                            std::span<const std::uint8_t> data) {
  return initializer(name, DType::u8, shape, std::as_bytes(data));
}

Value Graph::constant_i64(const std::vector<std::int64_t>& values, const std::vector<std::int64_t>& shape) {
  std::string name = "const.i64.";
  name += shape.empty() ? "scalar." : "[" + join_i64(shape) + "].";
  name += "[" + join_i64(values) + "]";
  if (impl_->constants.insert(name).second) initializer_i64(name, shape, values);
  return Value{name};
}

Value Graph::constant_i64(const std::vector<std::int64_t>& values) {
  return constant_i64(values, {static_cast<std::int64_t>(values.size())});
}

Value Graph::constant_f32(float value) {
  char text[48];
  std::snprintf(text, sizeof text, "const.f32.%a", static_cast<double>(value));
  std::string name = text;
  if (impl_->constants.insert(name).second) initializer_f32(name, {}, std::span<const float>(&value, 1));
  return Value{name};
}

Value Graph::op(std::string_view op_name, const std::vector<Value>& inputs, const std::vector<Attr>& attrs) {
  return ops(op_name, inputs, 1, attrs)[0];
}

std::vector<Value> Graph::ops(std::string_view op_name, const std::vector<Value>& inputs, int num_outputs,
                              const std::vector<Attr>& attrs) {
  std::string domain;
  std::string op_type(op_name);
  if (const auto dot = op_name.rfind('.'); dot != std::string_view::npos) {
    domain = std::string(op_name.substr(0, dot));
    op_type = std::string(op_name.substr(dot + 1));
  }
  std::string base = impl_->scope_path.empty() ? op_type : impl_->scope_path + "/" + op_type;
  const int uses = impl_->node_names[base]++;
  std::string node_name = uses == 0 ? base : base + "_" + std::to_string(uses);

  auto* node = impl_->graph->add_node();
  node->set_op_type(op_type);
  if (!domain.empty()) node->set_domain(domain);
  node->set_name(node_name);
  for (const Value& in : inputs) {
    if (!in.empty() && !impl_->defined.count(in.name)) {
      throw_error(ErrorKind::usage, impl_->name, node_name, "inputs defined in the graph",
                  "undefined value " + in.name);
    }
    node->add_input(in.name);
  }
  // Drop trailing omitted inputs (ONNX allows "" only before a present one).
  while (node->input_size() > 0 && node->input(node->input_size() - 1).empty()) {
    node->mutable_input()->RemoveLast();
  }
  for (const Attr& a : attrs) set_attr(node->add_attribute(), a);

  std::vector<Value> outputs;
  const int index = impl_->graph->node_size() - 1;
  for (int i = 0; i < num_outputs; ++i) {
    std::string out = node_name + "/output_" + std::to_string(i);
    impl_->define(out);
    impl_->producer[out] = index;
    node->add_output(out);
    outputs.push_back(Value{out});
  }
  return outputs;
}

Graph::Scope::~Scope() {
  if (graph_ != nullptr) {
    graph_->impl_->scopes.pop_back();
    graph_->impl_->rebuild_scope_path();
  }
}

Graph::Scope::Scope(Scope&& other) noexcept : graph_(other.graph_) { other.graph_ = nullptr; }

Graph::Scope Graph::scope(std::string_view part) {
  impl_->scopes.emplace_back(part);
  impl_->rebuild_scope_path();
  return Scope(this);
}

const std::string& Graph::scope_path() const { return impl_->scope_path; }

std::string Graph::scoped(std::string_view leaf) const {
  if (impl_->scope_path.empty()) return std::string(leaf);
  return impl_->scope_path + "." + std::string(leaf);
}

void Graph::add_metadata(const std::string& key, const std::string& value) {
  auto* prop = impl_->model.add_metadata_props();
  prop->set_key(key);
  prop->set_value(value);
}

void Graph::save(const std::filesystem::path& onnx_path) {
  if (impl_->saved) throw_error(ErrorKind::usage, onnx_path.string(), "Graph::save called twice");
  if (onnx_path.parent_path() != impl_->weights_path.parent_path()) {
    throw_error(ErrorKind::usage, onnx_path.string(), "directory of the weights file",
                impl_->weights_path.parent_path().string(), onnx_path.parent_path().string());
  }
  auto& model = impl_->model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("q3vl");
  model.set_producer_version(kVersion);
  auto* onnx_opset = model.add_opset_import();
  onnx_opset->set_domain("");
  onnx_opset->set_version(kOnnxOpset);
  auto* ms_opset = model.add_opset_import();
  ms_opset->set_domain("com.microsoft");
  ms_opset->set_version(kMicrosoftOpset);
  // Any other domain a node uses (q3vl's own ops, "q3vl") is imported at version 1.
  std::set<std::string> custom_domains;
  for (const auto& node : impl_->graph->node()) {
    if (!node.domain().empty() && node.domain() != "com.microsoft") custom_domains.insert(node.domain());
  }
  for (const auto& domain : custom_domains) {
    auto* opset = model.add_opset_import();
    opset->set_domain(domain);
    opset->set_version(1);
  }

  impl_->weights.close();
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    throw_error(ErrorKind::runtime, onnx_path.string(), "protobuf serialisation failed (graph over 2 GB?)");
  }
  std::FILE* file = std::fopen(onnx_path.c_str(), "wb");
  bool ok = file != nullptr && std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  const int error = errno;
  if (file != nullptr) ok = (std::fclose(file) == 0) && ok;
  if (!ok) {
    std::error_code ignored;
    std::filesystem::remove(onnx_path, ignored);
    std::filesystem::remove(impl_->weights_path, ignored);
    throw_error(ErrorKind::io, onnx_path.string(),
                "cannot write graph (" + std::string(std::strerror(error)) + "); is the disk full?");
  }
  impl_->saved = true;
}

}  // namespace q3vl::builder
