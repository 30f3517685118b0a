#include "runtime/genai_package_check.h"

#include <algorithm>
#include <tuple>

#include "io/json_file.h"
#include "q3vl/error.h"

namespace q3vl::runtime {
namespace {

// Collects problems while walking the config; every lookup that fails is one line.
class Checker {
 public:
  explicit Checker(GenaiPackageReport& report) : report_(report) {}

  void problem(std::string text) { report_.problems.push_back(std::move(text)); }

  const io::Json* field(const io::Json& parent, const std::string& path, const std::string& key) {
    if (!parent.is_object() || !parent.contains(key)) {
      problem(path + "." + key + ": missing");
      return nullptr;
    }
    return &parent[key];
  }
  std::string string_field(const io::Json& parent, const std::string& path, const std::string& key) {
    const io::Json* j = field(parent, path, key);
    if (j == nullptr) return {};
    if (!j->is_string()) {
      problem(path + "." + key + ": expected a string, got " + j->dump());
      return {};
    }
    return j->get<std::string>();
  }
  std::int64_t int_field(const io::Json& parent, const std::string& path, const std::string& key) {
    const io::Json* j = field(parent, path, key);
    if (j == nullptr) return -1;
    if (!j->is_number_integer()) {
      problem(path + "." + key + ": expected an integer, got " + j->dump());
      return -1;
    }
    return j->get<std::int64_t>();
  }

 private:
  GenaiPackageReport& report_;
};

const TensorInfo* find(const std::vector<TensorInfo>& list, const std::string& name) {
  for (const auto& t : list) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string describe(const TensorInfo& t) { return std::string(element_type_name(t.element_type)) + " " + format_shape(t); }

// The named tensor must exist with `dtype`; when `last_dim` >= 0 its last dim must be that.
void expect_tensor(Checker& c, const std::vector<TensorInfo>& list, const std::string& field, const std::string& name,
                   const char* kind, const char* dtype, std::int64_t last_dim = -1) {
  if (name.empty()) return;
  const TensorInfo* t = find(list, name);
  if (t == nullptr) {
    c.problem(field + ": the graph has no " + kind + " named " + name);
    return;
  }
  if (std::string(element_type_name(t->element_type)) != dtype) {
    c.problem(field + ": " + name + " is " + describe(*t) + ", expected " + dtype);
  }
  if (last_dim >= 0 && (t->shape.empty() || t->shape.back() != last_dim)) {
    c.problem(field + ": " + name + " is " + describe(*t) + ", expected last dimension " + std::to_string(last_dim) +
              " (decoder.hidden_size)");
  }
}

// "past_key_values.%d.key" -> "past_key_values.3.key"
std::string layer_name(const std::string& pattern, std::int64_t layer) {
  const auto at = pattern.find("%d");
  if (at == std::string::npos) return pattern;
  return pattern.substr(0, at) + std::to_string(layer) + pattern.substr(at + 2);
}

GenaiGraphReport open_graph(Checker& c, const std::filesystem::path& dir, const std::string& section,
                            const std::string& file) {
  GenaiGraphReport g{section, file, {}, {}};
  if (file.empty()) return g;
  if (!std::filesystem::exists(dir / file)) {
    c.problem("model." + section + ".filename: " + file + " does not exist");
    return g;
  }
  try {
    OrtSession session(section, dir / file);
    g.inputs = session.inputs();
    g.outputs = session.outputs();
  } catch (const Error& e) {
    c.problem("model." + section + ".filename: " + file + ": " + e.what());
  }
  return g;
}

}  // namespace

bool is_genai_package(const std::filesystem::path& dir) { return std::filesystem::exists(dir / kGenaiConfigName); }

GenaiPackageReport check_genai_package(const std::filesystem::path& dir) {
  const io::Json config = io::read_json_file(dir / kGenaiConfigName);
  GenaiPackageReport report;
  Checker c(report);
  const io::Json* model = c.field(config, "genai_config.json", "model");
  if (model == nullptr) return report;
  report.model_type = c.string_field(*model, "model", "type");
  if (!report.model_type.empty() && report.model_type != "qwen3_vl") {
    c.problem("model.type: expected qwen3_vl, got " + report.model_type);
  }
  const std::int64_t context = c.int_field(*model, "model", "context_length");
  const io::Json* search = c.field(config, "genai_config.json", "search");
  if (search != nullptr) {
    const std::int64_t max_length = c.int_field(*search, "search", "max_length");
    if (context > 0 && max_length > context) {
      c.problem("search.max_length: " + std::to_string(max_length) + " exceeds model.context_length " +
                std::to_string(context));
    }
  }
  static const io::Json kEmpty = io::Json::object();
  auto section = [&](const char* name) -> const io::Json& {
    const io::Json* j = c.field(*model, "model", name);
    return j != nullptr ? *j : kEmpty;
  };
  const io::Json& decoder = section("decoder");
  const io::Json& embedding = section("embedding");
  const io::Json& vision = section("vision");
  report.hidden_size = c.int_field(decoder, "model.decoder", "hidden_size");
  const std::int64_t width = report.hidden_size;

  // vision: pixel_values + image_grid_thw -> image_features [tokens, width]
  GenaiGraphReport vg = open_graph(c, dir, "vision", c.string_field(vision, "model.vision", "filename"));
  const std::string processor = c.string_field(vision, "model.vision", "config_filename");
  if (!processor.empty() && !std::filesystem::exists(dir / processor)) {
    c.problem("model.vision.config_filename: " + processor + " does not exist");
  }
  const io::Json& vin = vision.contains("inputs") ? vision["inputs"] : kEmpty;
  const io::Json& vout = vision.contains("outputs") ? vision["outputs"] : kEmpty;
  if (!vg.inputs.empty()) {
    expect_tensor(c, vg.inputs, "model.vision.inputs.pixel_values",
                  c.string_field(vin, "model.vision.inputs", "pixel_values"), "input", "float32");
    // GenAI's default name for this input is image_sizes; Qwen graphs take image_grid_thw.
    const std::string grid = c.string_field(vin, "model.vision.inputs", "image_grid_thw");
    expect_tensor(c, vg.inputs, "model.vision.inputs.image_grid_thw", grid, "input", "int64", 3);
    expect_tensor(c, vg.outputs, "model.vision.outputs.image_features",
                  c.string_field(vout, "model.vision.outputs", "image_features"), "output", "float32", width);
  }

  // embedding: input_ids + image_features [N, width] -> inputs_embeds [B, S, width]
  GenaiGraphReport eg = open_graph(c, dir, "embedding", c.string_field(embedding, "model.embedding", "filename"));
  const io::Json& ein = embedding.contains("inputs") ? embedding["inputs"] : kEmpty;
  const io::Json& eout = embedding.contains("outputs") ? embedding["outputs"] : kEmpty;
  if (!eg.inputs.empty()) {
    expect_tensor(c, eg.inputs, "model.embedding.inputs.input_ids",
                  c.string_field(ein, "model.embedding.inputs", "input_ids"), "input", "int64");
    expect_tensor(c, eg.inputs, "model.embedding.inputs.image_features",
                  c.string_field(ein, "model.embedding.inputs", "image_features"), "input", "float32", width);
    expect_tensor(c, eg.outputs, "model.embedding.outputs.inputs_embeds",
                  c.string_field(eout, "model.embedding.outputs", "inputs_embeds"), "output", "float32", width);
  }

  // decoder: inputs_embeds [B, S, width], mask, position_ids, per-layer KV
  GenaiGraphReport dg = open_graph(c, dir, "decoder", c.string_field(decoder, "model.decoder", "filename"));
  const io::Json& din = decoder.contains("inputs") ? decoder["inputs"] : kEmpty;
  const io::Json& dout = decoder.contains("outputs") ? decoder["outputs"] : kEmpty;
  if (!dg.inputs.empty()) {
    const std::int64_t layers = c.int_field(decoder, "model.decoder", "num_hidden_layers");
    const std::int64_t kv_heads = c.int_field(decoder, "model.decoder", "num_key_value_heads");
    const std::int64_t head_size = c.int_field(decoder, "model.decoder", "head_size");
    expect_tensor(c, dg.inputs, "model.decoder.inputs.inputs_embeds",
                  c.string_field(din, "model.decoder.inputs", "inputs_embeds"), "input", "float32", width);
    const std::string mask = c.string_field(din, "model.decoder.inputs", "attention_mask");
    const std::string positions = c.string_field(din, "model.decoder.inputs", "position_ids");
    expect_tensor(c, dg.inputs, "model.decoder.inputs.attention_mask", mask, "input", "int64");
    // GenAI gives position_ids the mask's dtype, as [3, B, S] for qwen3_vl.
    expect_tensor(c, dg.inputs, "model.decoder.inputs.position_ids", positions, "input", "int64");
    if (const TensorInfo* p = find(dg.inputs, positions); p != nullptr && (p->shape.size() != 3 || p->shape[0] != 3)) {
      c.problem("model.decoder.inputs.position_ids: " + positions + " is " + describe(*p) + ", expected [3, batch, sequence]");
    }
    expect_tensor(c, dg.outputs, "model.decoder.outputs.logits", c.string_field(dout, "model.decoder.outputs", "logits"),
                  "output", "float32");
    const std::string past_key = c.string_field(din, "model.decoder.inputs", "past_key_names");
    const std::string past_value = c.string_field(din, "model.decoder.inputs", "past_value_names");
    const std::string present_key = c.string_field(dout, "model.decoder.outputs", "present_key_names");
    const std::string present_value = c.string_field(dout, "model.decoder.outputs", "present_value_names");
    std::size_t bound = 3;
    for (std::int64_t i = 0; i < layers; ++i) {
      for (const auto& [pattern, list, kind] :
           {std::tuple{past_key, &dg.inputs, "input"}, std::tuple{past_value, &dg.inputs, "input"},
            std::tuple{present_key, &dg.outputs, "output"}, std::tuple{present_value, &dg.outputs, "output"}}) {
        const std::string name = layer_name(pattern, i);
        const TensorInfo* t = find(*list, name);
        const std::string field = "model.decoder (layer " + std::to_string(i) + ")";
        if (t == nullptr) {
          c.problem(field + ": the graph has no " + kind + " named " + name);
          continue;
        }
        if (t->shape.size() != 4 || t->shape[1] != kv_heads || t->shape[3] != head_size) {
          c.problem(field + ": " + name + " is " + describe(*t) + ", expected [batch, " + std::to_string(kv_heads) +
                    " (num_key_value_heads), sequence, " + std::to_string(head_size) + " (head_size)]");
        }
      }
    }
    bound += 2 * static_cast<std::size_t>(std::max<std::int64_t>(layers, 0));
    // GenAI feeds only the inputs its config names; any other input would be left unbound.
    if (dg.inputs.size() != bound) {
      c.problem("model.decoder: the graph has " + std::to_string(dg.inputs.size()) + " inputs, the config names " +
                std::to_string(bound));
    }
  }
  report.graphs = {vg, eg, dg};
  return report;
}

}  // namespace q3vl::runtime
