#include "builder/quant_recipe.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr std::array<std::string_view, 10> kTensorNames = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "experts", "lm_head", "*"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return parts;
}

// A non-negative decimal integer, or -1.
std::int64_t parse_count(std::string_view s) {
  std::int64_t v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0 ? v : -1;
}

struct Parser {
  std::string_view flag;
  std::string rule;  // the rule being parsed, for messages

  [[noreturn]] void fail(const std::string& expected, std::string_view got) const {
    throw_error(ErrorKind::usage, "", std::string(flag), expected + " (in rule \"" + rule + "\")", std::string(got));
  }

  LayerSet layer_set(std::string_view s) const {
    if (s == "all") return {LayerSet::Kind::all, 0};
    if (s == "more_bits") return {LayerSet::Kind::more_bits, 0};
    for (const auto& [prefix, kind] : {std::pair{std::string_view("first:"), LayerSet::Kind::first},
                                       std::pair{std::string_view("last:"), LayerSet::Kind::last}}) {
      if (s.substr(0, prefix.size()) == prefix) {
        const std::int64_t n = parse_count(s.substr(prefix.size()));
        if (n < 0) fail("a layer count after " + std::string(prefix), s);
        return {kind, n};
      }
    }
    const std::int64_t index = parse_count(s);
    if (index < 0) fail("a layer set: all, first:N, last:N, more_bits or a layer index", s);
    return {LayerSet::Kind::index, index};
  }

  void format(std::string_view s, RecipeRule& r) const {
    const auto colon = s.find(':');
    const std::string_view name = s.substr(0, colon);
    if (name == "int4") r.precision = WeightPrecision::int4;
    else if (name == "nl4") r.precision = WeightPrecision::nl4;
    else if (name == "int5") r.precision = WeightPrecision::int5;
    else if (name == "int6") r.precision = WeightPrecision::int6;
    else if (name == "int8") r.precision = WeightPrecision::int8;
    else fail("a format: int4, nl4, int5, int6 or int8", name);
    if (colon != std::string_view::npos) {
      const std::int64_t b = parse_count(s.substr(colon + 1));
      if (b < 16 || (b & (b - 1)) != 0) fail("a block size: a power of two >= 16", s.substr(colon + 1));
      r.block_size = b;
    }
  }

  RecipeRule parse_rule(std::string_view text) {
    rule = std::string(text);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) fail("TENSORS[@LAYERS]=FORMAT", text);
    RecipeRule r;
    std::string_view lhs = trim(text.substr(0, eq));
    const auto at = lhs.find('@');
    if (at != std::string_view::npos) {
      for (std::string_view set : split(lhs.substr(at + 1), '+')) r.layers.push_back(layer_set(set));
      lhs = trim(lhs.substr(0, at));
    }
    for (std::string_view name : split(lhs, ',')) {
      if (std::find(kTensorNames.begin(), kTensorNames.end(), name) == kTensorNames.end()) {
        fail("a tensor: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, experts, lm_head or *", name);
      }
      r.tensors.emplace_back(name);
    }
    format(trim(text.substr(eq + 1)), r);
    return r;
  }
};

bool matches(const RecipeRule& r, std::string_view tensor, std::int64_t layer, std::int64_t num_layers) {
  const bool named = std::any_of(r.tensors.begin(), r.tensors.end(),
                                 [&](const std::string& t) { return t == "*" || t == tensor; });
  if (!named) return false;
  if (r.layers.empty()) return true;
  return std::any_of(r.layers.begin(), r.layers.end(), [&](const LayerSet& s) {
    return s.kind == LayerSet::Kind::all || (layer != kNoLayer && s.contains(layer, num_layers));
  });
}

const char* format_name(WeightPrecision p) { return to_string(p); }

// Stored bytes per weight of one tensor in `f`.
double bytes_per_weight(const LinearFormat& f) {
  switch (f.precision) {
    case WeightPrecision::fp32: return 4.0;
    case WeightPrecision::fp16: return 2.0;
    default: break;
  }
  const QuantOptions q = quant_options(f);
  const double b = static_cast<double>(q.block_size);
  return q.bits / 8.0 + 2.0 / b + (q.symmetric ? 0.0 : 1.0 / b);
}

}  // namespace

bool LayerSet::contains(std::int64_t layer, std::int64_t num_layers) const {
  switch (kind) {
    case Kind::all: return true;
    case Kind::first: return layer < n;
    case Kind::last: return layer >= num_layers - n;
    case Kind::more_bits: return more_bits_layer(layer, num_layers);
    case Kind::index: return layer == n;
  }
  return false;
}

bool more_bits_layer(std::int64_t layer, std::int64_t num_layers) {
  const std::int64_t eighth = num_layers / 8;
  return layer < eighth || layer >= 7 * num_layers / 8 || (layer - eighth) % 3 == 2;
}

const std::vector<std::pair<std::string, std::string>>& recipe_presets() {
  static const std::vector<std::pair<std::string, std::string>> presets = {
      // llama.cpp Q4_K_M's mixture on q3vl's formats: 6-bit lm_head, v_proj and down_proj
      // in the more_bits layers, nl4 elsewhere (0.6175 byte/weight on the 4b preset).
      {"q4km", "lm_head=int6;v_proj,down_proj@more_bits=int6;*=nl4"},
  };
  return presets;
}

QuantRecipe parse_quant_recipe(std::string_view text, std::string_view flag) {
  text = trim(text);
  if (text == kNoRecipe) return {};
  for (const auto& [name, rules] : recipe_presets()) {
    if (text == name) return parse_quant_recipe(rules, flag);
  }
  Parser parser{flag, {}};
  QuantRecipe recipe;
  if (text.empty()) parser.fail("a recipe: rules TENSORS[@LAYERS]=FORMAT separated by ';', or a preset", text);
  for (std::string_view rule : split(text, ';')) {
    if (rule.empty()) continue;  // a trailing ';'
    recipe.rules.push_back(parser.parse_rule(rule));
  }
  return recipe;
}

std::string to_string(const QuantRecipe& recipe) {
  std::string out;
  for (const RecipeRule& r : recipe.rules) {
    if (!out.empty()) out += ';';
    for (std::size_t i = 0; i < r.tensors.size(); ++i) out += (i ? "," : "") + r.tensors[i];
    for (std::size_t i = 0; i < r.layers.size(); ++i) {
      const LayerSet& s = r.layers[i];
      out += i ? "+" : "@";
      switch (s.kind) {
        case LayerSet::Kind::all: out += "all"; break;
        case LayerSet::Kind::first: out += "first:" + std::to_string(s.n); break;
        case LayerSet::Kind::last: out += "last:" + std::to_string(s.n); break;
        case LayerSet::Kind::more_bits: out += "more_bits"; break;
        case LayerSet::Kind::index: out += std::to_string(s.n); break;
      }
    }
    out += std::string("=") + format_name(r.precision);
    if (r.block_size > 0) out += ":" + std::to_string(r.block_size);
  }
  return out;
}

LinearFormat resolve_format(const LinearFormat& base, const QuantRecipe& recipe, std::string_view tensor,
                            std::int64_t layer, std::int64_t num_layers) {
  for (const RecipeRule& r : recipe.rules) {
    if (!matches(r, tensor, layer, num_layers)) continue;
    LinearFormat f = base;
    f.precision = r.precision;
    if (r.block_size > 0) f.quant.block_size = r.block_size;
    return f;
  }
  return base;
}

double recipe_bytes_per_weight(const LinearFormat& base, const QuantRecipe& recipe, const TextConfig& t) {
  const std::int64_t n = t.num_hidden_layers;
  const std::int64_t q = t.num_attention_heads * t.head_dim, kv = t.num_key_value_heads * t.head_dim;
  double bytes = 0.0, weights = 0.0;
  auto add = [&](std::string_view tensor, std::int64_t layer, std::int64_t count) {
    bytes += bytes_per_weight(resolve_format(base, recipe, tensor, layer, n)) * static_cast<double>(count);
    weights += static_cast<double>(count);
  };
  for (std::int64_t i = 0; i < n; ++i) {
    add("q_proj", i, q * t.hidden_size);
    add("k_proj", i, kv * t.hidden_size);
    add("v_proj", i, kv * t.hidden_size);
    add("o_proj", i, t.hidden_size * q);
    if (t.is_moe_layer(i)) {
      add("experts", i, t.num_experts * 3 * t.hidden_size * t.moe_intermediate_size);
    } else {
      for (const char* m : {"gate_proj", "up_proj", "down_proj"}) add(m, i, t.hidden_size * t.intermediate_size);
    }
  }
  add("lm_head", kNoLayer, t.vocab_size * t.hidden_size);
  return bytes / weights;
}

}  // namespace q3vl::builder
