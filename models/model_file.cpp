#include "models/model_file.hpp"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "autodiff/layers.hpp"
#include "kernels/fc.hpp"

namespace rematch::models {
namespace {

using nlohmann::json;

// Bounds that keep every size computation far from overflow and refuse what no machine trains.
constexpr std::int64_t kMaxDim = std::int64_t{1} << 24;          // features, channels, length, taps
constexpr std::int64_t kMaxSampleValues = std::int64_t{1} << 28;  // values of one sample
constexpr std::int64_t kMaxTensorValues = std::int64_t{1} << 31;  // values of one parameter tensor
constexpr int kMaxNesting = 8;                                    // residual blocks in blocks

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

std::string type_name(const json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a number";
  return std::string(j.type_name() == std::string("array") || j.type_name() == std::string("object")
                         ? "an "
                         : "a ") +
         j.type_name();
}

// Reads one document, every access with its path, every refusal a ModelFileError.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw ModelFileError(source_ + ": " + (path.empty() ? "" : path + ": ") + what);
  }

  // Refuses keys other than `allowed` (a misspelt key would otherwise be silently ignored).
  void object(const json& j, const std::string& path, std::initializer_list<const char*> allowed) const {
    if (!j.is_object()) fail(path, "expected an object, got " + type_name(j));
    for (const auto& item : j.items()) {
      bool known = false;
      std::string list;
      for (const char* a : allowed) {
        known = known || item.key() == a;
        list += (list.empty() ? "" : ", ") + std::string(a);
      }
      if (!known) fail(join(path, item.key()), "unknown key (expected one of " + list + ")");
    }
  }

  const json& required(const json& obj, const std::string& path, const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end()) fail(path, std::string("missing key '") + key + "'");
    return *it;
  }

  std::int64_t integer(const json& obj, const std::string& path, const char* key, std::int64_t lo,
                       std::int64_t hi, std::optional<std::int64_t> fallback = {}) const {
    const auto it = obj.find(key);
    if (it == obj.end()) {
      if (fallback) return *fallback;
      fail(path, std::string("missing key '") + key + "'");
    }
    return integer_value(*it, join(path, key), lo, hi);
  }

  std::int64_t integer_value(const json& j, const std::string& path, std::int64_t lo,
                             std::int64_t hi) const {
    const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (j.is_number_unsigned()) {
      const auto u = j.get<std::uint64_t>();
      if (u > std::uint64_t(hi) || std::int64_t(u) < lo) fail(path, "expected " + range + ", got " + std::to_string(u));
      return std::int64_t(u);
    }
    if (!j.is_number_integer()) fail(path, "expected " + range + ", got " + type_name(j));
    const auto v = j.get<std::int64_t>();
    if (v < lo || v > hi) fail(path, "expected " + range + ", got " + std::to_string(v));
    return v;
  }

  // A finite number in [lo, hi] (hi_open: strictly below hi).
  float number(const json& obj, const std::string& path, const char* key, double lo, double hi,
               bool hi_open, float fallback) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    const std::string p = join(path, key);
    const std::string range = "a number in [" + format(lo) + ", " + format(hi) + (hi_open ? ")" : "]");
    if (!it->is_number()) fail(p, "expected " + range + ", got " + type_name(*it));
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < lo || v > hi || (hi_open && v >= hi)) {
      fail(p, "expected " + range + ", got " + it->dump());
    }
    return float(v);
  }

  bool boolean(const json& obj, const std::string& path, const char* key, bool fallback) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (!it->is_boolean()) fail(join(path, key), "expected true or false, got " + type_name(*it));
    return it->get<bool>();
  }

  std::string string(const json& obj, const std::string& path, const char* key,
                     std::optional<std::string> fallback = {}) const {
    const auto it = obj.find(key);
    if (it == obj.end()) {
      if (fallback) return *fallback;
      fail(path, std::string("missing key '") + key + "'");
    }
    if (!it->is_string()) fail(join(path, key), "expected a string, got " + type_name(*it));
    return it->get<std::string>();
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string format(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }

 private:
  std::string source_;
};

std::int64_t checked_product(const Reader& r, const std::string& path, std::int64_t a,
                             std::int64_t b, std::int64_t limit, const char* what) {
  // a, b <= kMaxDim or kMaxSampleValues: the product fits in 64 bits.
  const std::int64_t p = a * b;
  if (p > limit) {
    r.fail(path, std::string(what) + " of " + std::to_string(p) + " values exceeds the limit of " +
                     std::to_string(limit));
  }
  return p;
}

// A layer's optional "activation": "none" (the default) or "relu" (fused into the layer).
bool relu_activation(const Reader& r, const json& j, const std::string& path) {
  const std::string act = r.string(j, path, "activation", "none");
  if (act != "none" && act != "relu") {
    r.fail(Reader::join(path, "activation"), "expected 'none' or 'relu', got " + in_quotes(act));
  }
  return act == "relu";
}

struct LayerParser {
  const Reader& r;

  // Parses layers[] at `path` starting from `in`; returns the specs (their dims chained).
  std::vector<LayerSpec> list(const json& layers, const std::string& path, TensorDims in,
                              int nesting) const {
    if (!layers.is_array()) r.fail(path, "expected an array of layers, got " + type_name(layers));
    if (layers.empty()) r.fail(path, "expected at least one layer");
    std::vector<LayerSpec> out;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      out.push_back(layer(layers[i], path + "[" + std::to_string(i) + "]", in, nesting));
      in = out.back().out;
    }
    return out;
  }

  LayerSpec layer(const json& j, const std::string& path, const TensorDims& in, int nesting) const {
    if (!j.is_object()) r.fail(path, "expected a layer object, got " + type_name(j));
    LayerSpec s;
    s.path = path;
    s.in = in;
    const std::string type = r.string(j, path, "type");
    auto needs_sequence = [&](const char* what) {
      if (!in.is_sequence()) {
        r.fail(path, std::string(what) + " reads a sequence (channels x length), but its input is " +
                         to_string(in));
      }
    };
    if (type == "linear") {
      r.object(j, path, {"type", "out", "bias", "activation"});
      s.kind = LayerKind::linear;
      if (in.is_sequence()) {
        r.fail(path, "linear reads features, but its input is " + to_string(in) +
                         " (insert a flatten before it)");
      }
      s.units = r.integer(j, path, "out", 1, kMaxDim);
      s.bias = r.boolean(j, path, "bias", true);
      s.relu = relu_activation(r, j, path);
      checked_product(r, path, in.features, s.units, kMaxTensorValues, "a weight");
      s.out = {.features = s.units};
    } else if (type == "conv1d") {
      r.object(j, path, {"type", "out", "taps", "dilation", "padding", "bias", "activation"});
      s.kind = LayerKind::conv1d;
      needs_sequence("conv1d");
      s.units = r.integer(j, path, "out", 1, kMaxDim);
      s.taps = r.integer(j, path, "taps", 1, kMaxDim);
      s.dilation = r.integer(j, path, "dilation", 1, kMaxDim, 1);
      s.bias = r.boolean(j, path, "bias", true);
      s.relu = relu_activation(r, j, path);
      const std::string pad = r.string(j, path, "padding", "same");
      if (pad != "same" && pad != "valid") {
        r.fail(Reader::join(path, "padding"), "expected 'same' or 'valid', got " + in_quotes(pad));
      }
      s.padding = pad == "same" ? kernels::Padding::same : kernels::Padding::valid;
      const std::int64_t span = (s.taps - 1) * s.dilation;
      const std::int64_t length = s.padding == kernels::Padding::same ? in.length : in.length - span;
      if (length <= 0) {
        r.fail(path, "a valid conv1d of " + std::to_string(s.taps) + " taps at dilation " +
                         std::to_string(s.dilation) + " over length " + std::to_string(in.length) +
                         " leaves an output length of " + std::to_string(length) + " (expected > 0)");
      }
      checked_product(r, path, s.taps, checked_product(r, path, s.units, in.channels, kMaxTensorValues, "a weight"),
                      kMaxTensorValues, "a weight");
      checked_product(r, path, s.units, length, kMaxSampleValues, "an output sample");
      s.out = {.channels = s.units, .length = length};
    } else if (type == "relu" || type == "gelu" || type == "flatten") {
      r.object(j, path, {"type"});
      s.kind = type == "relu" ? LayerKind::relu : type == "gelu" ? LayerKind::gelu : LayerKind::flatten;
      s.out = in;
      if (s.kind == LayerKind::flatten) {
        needs_sequence("flatten");
        s.out = {.features = in.values()};
      }
    } else if (type == "layer_norm") {
      r.object(j, path, {"type", "eps"});
      s.kind = LayerKind::layer_norm;
      s.eps = r.number(j, path, "eps", 1e-12, 1, false, 1e-5f);
      s.out = in;
    } else if (type == "dropout") {
      r.object(j, path, {"type", "p"});
      s.kind = LayerKind::dropout;
      s.p = r.number(j, path, "p", 0, 1, true, 0.5f);
      s.out = in;
    } else if (type == "max_pool1d" || type == "avg_pool1d") {
      r.object(j, path, {"type", "window", "stride"});
      s.kind = type == "max_pool1d" ? LayerKind::max_pool1d : LayerKind::avg_pool1d;
      needs_sequence(type.c_str());
      s.window = r.integer(j, path, "window", 1, kMaxDim);
      s.stride = r.integer(j, path, "stride", 1, kMaxDim, s.window);
      if (s.window > in.length) {
        r.fail(Reader::join(path, "window"), "a window of " + std::to_string(s.window) +
                                                 " exceeds the input length " + std::to_string(in.length));
      }
      s.out = {.channels = in.channels, .length = (in.length - s.window) / s.stride + 1};
    } else if (type == "global_avg_pool" || type == "global_max_pool") {
      r.object(j, path, {"type"});
      s.kind = type == "global_avg_pool" ? LayerKind::global_avg_pool : LayerKind::global_max_pool;
      needs_sequence(type.c_str());
      s.out = {.features = in.channels};
    } else if (type == "residual") {
      r.object(j, path, {"type", "layers"});
      s.kind = LayerKind::residual;
      if (nesting >= kMaxNesting) {
        r.fail(path, "residual blocks nest deeper than " + std::to_string(kMaxNesting));
      }
      const std::string body_path = Reader::join(path, "layers");
      s.body = list(r.required(j, path, "layers"), body_path, in, nesting + 1);
      if (!(s.body.back().out == in)) {
        r.fail(body_path, "a residual block must return its input's shape (" + to_string(in) +
                              "), its layers end with " + to_string(s.body.back().out));
      }
      s.out = in;
    } else {
      std::string list;
      for (int k = 0; k <= int(LayerKind::residual); ++k) {
        list += (list.empty() ? "" : ", ") + to_string(LayerKind(k));
      }
      r.fail(Reader::join(path, "type"), "expected one of " + list + "; got " + in_quotes(type));
    }
    return s;
  }
};

TensorDims parse_input(const Reader& r, const json& j, const std::string& path) {
  if (!j.is_object()) r.fail(path, "expected {\"features\": N} or {\"channels\": C, \"length\": L}, got " + type_name(j));
  if (j.contains("features")) {
    r.object(j, path, {"features"});
    return {.features = r.integer(j, path, "features", 1, kMaxSampleValues)};
  }
  r.object(j, path, {"channels", "length"});
  TensorDims d{.channels = r.integer(j, path, "channels", 1, kMaxDim),
               .length = r.integer(j, path, "length", 1, kMaxDim)};
  checked_product(r, path, d.channels, d.length, kMaxSampleValues, "a sample");
  return d;
}

std::vector<int> parse_stages(const Reader& r, const json& enc, const std::string& path,
                              int layers) {
  const bool counts = enc.contains("stages"), per = enc.contains("layers_per_stage");
  if (counts && per) r.fail(path, "give either 'stages' or 'layers_per_stage', not both");
  std::vector<int> ends;
  if (counts) {
    const json& s = enc["stages"];
    const std::string p = Reader::join(path, "stages");
    if (!s.is_array() || s.empty()) r.fail(p, "expected a non-empty array of layer counts, got " + type_name(s));
    int end = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      end += int(r.integer_value(s[i], p + "[" + std::to_string(i) + "]", 1, layers - end));
      ends.push_back(end);
    }
    if (end != layers) {
      r.fail(p, "the stages cover " + std::to_string(end) + " of the " + std::to_string(layers) +
                    " layers (expected every layer)");
    }
    return ends;
  }
  const int per_stage = int(r.integer(enc, path, "layers_per_stage", 1, layers, 1));
  for (int end = per_stage;; end += per_stage) {
    ends.push_back(std::min(end, layers));
    if (end >= layers) break;
  }
  return ends;
}

struct LossChoice {
  const char* name;
  autodiff::LossKind kind;
  Task task;
  int branches;
};
constexpr LossChoice kLosses[] = {
    {"contrastive", autodiff::LossKind::contrastive, Task::pairs, 2},
    {"cosine_embedding", autodiff::LossKind::cosine, Task::pairs, 2},
    {"triplet_margin", autodiff::LossKind::triplet, Task::triplets, 3},
    {"softmax_cross_entropy", autodiff::LossKind::cross_entropy, Task::classifier, 1},
};

void name_check(const Reader& r, const std::string& path, const std::string& name) {
  if (name.empty() || name.size() > 64) r.fail(path, "expected a name of 1 to 64 characters");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) r.fail(path, "expected letters, digits, '_' or '-' in " + in_quotes(name));
  }
}

// Dims of a sample at batch n, as the runtime lays it out: blocked features (what an FcLayer
// reads and writes), or a plain NCW row per sample.
autodiff::BlockShape runtime_shape(const TensorDims& d, std::int64_t n) {
  if (d.is_sequence()) return autodiff::plain_shape(n, d.values());
  kernels::FcDesc f;
  f.n = n;
  f.c = d.features;
  f.k = d.features;
  const kernels::FcDesc b = kernels::fc_blocking(f);
  return {n, d.features, b.bn, b.bc, false};
}

// An encoder's first linear layer reads the branch's input rows. When its backward is the narrow
// one-sweep pass, which reads x a row block at a time in place at any leading dimension, its input
// blocks span whole rows: the blocked layout is then the row-major batch itself (plus zero rows
// when the batch block does not divide the batch), so loading a batch copies contiguous rows
// instead of scattering each row over column blocks (docs/kernels.md, "Layouts"). Wider layers keep
// the preferred blocks: their three-pass backward transposes chunks of x, which whole-row blocks
// would make as large as the input's rows.
kernels::FcDesc input_layer_blocking(const kernels::FcDesc& d) {
  kernels::FcDesc rows = d;
  rows.bc = d.c;
  return kernels::fc_sweeps(rows) ? rows : d;
}

struct Builder {
  std::int64_t n;
  std::uint64_t seed;
  kernels::Allocator& parameters;
  std::shared_ptr<autodiff::SequenceLengths> lengths;  // null: every sequence at full length
  std::uint64_t dropout_counter = 0;

  // encoder_input: specs are an encoder's layers, the first reading the branch's input.
  std::vector<std::unique_ptr<autodiff::Layer>> layers(const std::vector<LayerSpec>& specs,
                                                       bool encoder_input = false) {
    std::vector<std::unique_ptr<autodiff::Layer>> out;
    for (const LayerSpec& s : specs) out.push_back(layer(s, encoder_input && out.empty()));
    return out;
  }

  std::unique_ptr<autodiff::Layer> layer(const LayerSpec& s, bool reads_input) {
    std::unique_ptr<autodiff::Layer> l = unmasked(s, reads_input);
    if (lengths == nullptr || !s.out.is_sequence()) return l;
    return std::make_unique<autodiff::MaskedLayer>(std::move(l), s.out.channels, lengths);
  }

  std::unique_ptr<autodiff::Layer> unmasked(const LayerSpec& s, bool reads_input) {
    const autodiff::BlockShape in = runtime_shape(s.in, n);
    switch (s.kind) {
      case LayerKind::linear: {
        kernels::FcDesc d;
        d.n = n;
        d.c = s.in.features;
        d.k = s.units;
        d.bias = s.bias;
        d.activation = s.relu ? kernels::Activation::relu : kernels::Activation::none;
        return std::make_unique<autodiff::FcLayer>(reads_input ? input_layer_blocking(d) : d, parameters);
      }
      case LayerKind::conv1d: {
        kernels::Conv1dDesc d;
        d.n = n;
        d.c = s.in.channels;
        d.k = s.units;
        d.width = s.in.length;
        d.taps = s.taps;
        d.dilation = s.dilation;
        d.padding = s.padding;
        d.bias = s.bias;
        d.activation = s.relu ? kernels::Activation::relu : kernels::Activation::none;
        return std::make_unique<autodiff::Conv1dLayer>(d, parameters);
      }
      case LayerKind::relu: return std::make_unique<autodiff::ReluLayer>(in);
      case LayerKind::gelu: return std::make_unique<autodiff::GeluLayer>(in);
      case LayerKind::layer_norm: return std::make_unique<autodiff::LayerNormLayer>(in, s.eps, parameters);
      case LayerKind::dropout:
        return std::make_unique<autodiff::DropoutLayer>(
            in, s.p, autodiff::splitmix(seed ^ autodiff::splitmix(++dropout_counter)));
      case LayerKind::max_pool1d:
      case LayerKind::avg_pool1d: {
        kernels::Pool1dDesc d;
        d.n = n;
        d.channels = s.in.channels;
        d.width = s.in.length;
        d.window = s.window;
        d.stride = s.stride;
        d.kind = s.kind == LayerKind::max_pool1d ? kernels::PoolKind::max : kernels::PoolKind::avg;
        return std::make_unique<autodiff::Pool1dLayer>(d);
      }
      case LayerKind::global_avg_pool:
      case LayerKind::global_max_pool: {
        auto all = lengths ? lengths : std::make_shared<autodiff::SequenceLengths>();
        return std::make_unique<autodiff::GlobalPoolLayer>(
            s.kind == LayerKind::global_avg_pool ? autodiff::GlobalPoolKind::avg : autodiff::GlobalPoolKind::max,
            runtime_shape(s.out, n), s.in.length, std::move(all));
      }
      case LayerKind::flatten: return std::make_unique<autodiff::ToBlockedLayer>(runtime_shape(s.out, n));
      case LayerKind::residual: return std::make_unique<autodiff::ResidualLayer>(layers(s.body));
    }
    throw std::logic_error("unknown layer kind");
  }
};

void names_of(const std::vector<LayerSpec>& layers, const std::string& prefix,
              std::vector<std::string>& out) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& s = layers[i];
    const std::string p = prefix + "." + std::to_string(i);
    switch (s.kind) {
      case LayerKind::linear:
      case LayerKind::conv1d:
        out.push_back(p + ".weight");
        if (s.bias) out.push_back(p + ".bias");
        break;
      case LayerKind::layer_norm:
        out.push_back(p + ".weight");
        out.push_back(p + ".bias");
        break;
      case LayerKind::residual: names_of(s.body, p + ".body", out); break;
      default: break;
    }
  }
}

}  // namespace

std::string to_string(const TensorDims& d) {
  if (d.is_sequence()) return std::to_string(d.channels) + " channels x " + std::to_string(d.length);
  return std::to_string(d.features) + " features";
}

std::string to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::linear: return "linear";
    case LayerKind::conv1d: return "conv1d";
    case LayerKind::relu: return "relu";
    case LayerKind::gelu: return "gelu";
    case LayerKind::layer_norm: return "layer_norm";
    case LayerKind::dropout: return "dropout";
    case LayerKind::max_pool1d: return "max_pool1d";
    case LayerKind::avg_pool1d: return "avg_pool1d";
    case LayerKind::global_avg_pool: return "global_avg_pool";
    case LayerKind::global_max_pool: return "global_max_pool";
    case LayerKind::flatten: return "flatten";
    case LayerKind::residual: return "residual";
  }
  return "?";
}

ModelDescription parse_model_document(const json& doc, const std::string& source) {
  const Reader r(source);
  r.object(doc, "", {"name", "description", "branches", "encoders", "loss"});
  ModelDescription m;
  m.source = source;
  m.name = r.string(doc, "", "name", "model");
  if (doc.contains("description") && !doc["description"].is_string()) {
    r.fail("description", "expected a string, got " + type_name(doc["description"]));
  }

  // The loss first: it fixes how many branches there are.
  const json& loss = r.required(doc, "", "loss");
  r.object(loss, "loss", {"type", "margin", "classes"});
  const std::string loss_type = r.string(loss, "loss", "type");
  const LossChoice* choice = nullptr;
  for (const LossChoice& c : kLosses) {
    if (loss_type == c.name) choice = &c;
  }
  if (choice == nullptr) {
    r.fail("loss.type", "expected contrastive, cosine_embedding, triplet_margin or "
                        "softmax_cross_entropy, got " + in_quotes(loss_type));
  }
  m.loss = choice->kind;
  m.task = choice->task;
  m.margin = r.number(loss, "loss", "margin", 0, 1e6, false, 1.0f);
  if (m.task == Task::classifier && loss.contains("margin")) r.fail("loss.margin", "softmax_cross_entropy has no margin");
  if (m.task != Task::classifier && loss.contains("classes")) r.fail("loss.classes", "only softmax_cross_entropy has classes");

  const json& encoders = r.required(doc, "", "encoders");
  if (!encoders.is_object() || encoders.empty()) {
    r.fail("encoders", "expected an object of named encoders, got " + type_name(encoders));
  }
  const json& branches = r.required(doc, "", "branches");
  if (!branches.is_array()) r.fail("branches", "expected an array of branches, got " + type_name(branches));
  if (int(branches.size()) != choice->branches) {
    r.fail("branches", "the " + loss_type + " loss reads " + std::to_string(choice->branches) +
                           " branches, got " + std::to_string(branches.size()));
  }
  std::set<std::string> branch_names;
  for (std::size_t j = 0; j < branches.size(); ++j) {
    const std::string path = "branches[" + std::to_string(j) + "]";
    const json& b = branches[j];
    r.object(b, path, {"name", "input", "encoder"});
    BranchSpec spec;
    spec.name = r.string(b, path, "name", "branch" + std::to_string(j));
    name_check(r, Reader::join(path, "name"), spec.name);
    if (!branch_names.insert(spec.name).second) r.fail(Reader::join(path, "name"), "a second branch named " + in_quotes(spec.name));
    const TensorDims input = parse_input(r, r.required(b, path, "input"), Reader::join(path, "input"));
    const std::string enc = r.string(b, path, "encoder");
    if (!encoders.contains(enc)) r.fail(Reader::join(path, "encoder"), "no encoder named " + in_quotes(enc) + " under 'encoders'");
    int index = -1;
    for (std::size_t e = 0; e < m.encoders.size(); ++e) {
      if (m.encoders[e].name == enc) index = int(e);
    }
    if (index >= 0) {
      if (!(m.encoders[index].input == input)) {
        r.fail(Reader::join(path, "input"), "branches sharing encoder " + in_quotes(enc) +
                                                " must read the same input; expected " +
                                                to_string(m.encoders[index].input) + ", got " +
                                                to_string(input));
      }
    } else {
      EncoderSpec e;
      e.name = enc;
      e.input = input;
      const std::string epath = "encoders." + enc;
      name_check(r, epath, enc);
      const json& ej = encoders[enc];
      r.object(ej, epath, {"layers", "layers_per_stage", "stages"});
      e.layers = LayerParser{r}.list(r.required(ej, epath, "layers"), epath + ".layers", input, 0);
      e.stage_ends = parse_stages(r, ej, epath, int(e.layers.size()));
      index = int(m.encoders.size());
      m.encoders.push_back(std::move(e));
    }
    spec.encoder = index;
    m.branches.push_back(spec);
  }
  for (const auto& item : encoders.items()) {
    bool used = false;
    for (const EncoderSpec& e : m.encoders) used = used || e.name == item.key();
    if (!used) r.fail("encoders." + item.key(), "no branch runs this encoder");
  }
  const TensorDims out = m.embedding();
  for (std::size_t j = 1; j < m.branches.size(); ++j) {
    if (!(m.encoder_of(int(j)).output() == out)) {
      r.fail("branches[" + std::to_string(j) + "]",
             "its encoder outputs " + to_string(m.encoder_of(int(j)).output()) +
                 " but branch 0's outputs " + to_string(out) + "; the loss compares them");
    }
  }
  if (out.is_sequence()) {
    r.fail("encoders." + m.encoders[0].name + ".layers",
           "an encoder must end in features, it ends with " + to_string(out) + " (add a flatten)");
  }
  if (m.task == Task::classifier) {
    m.classes = out.features;
    if (m.classes < 2) r.fail("encoders." + m.encoders[0].name + ".layers", "a classifier needs at least 2 output features (classes)");
    if (loss.contains("classes")) {
      const std::int64_t c = r.integer(loss, "loss", "classes", 2, kMaxDim);
      if (c != m.classes) {
        r.fail("loss.classes", "expected the encoder's " + std::to_string(m.classes) +
                                   " output features, got " + std::to_string(c));
      }
    }
  }
  return m;
}

ModelDescription parse_model_json(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw ModelFileError(source + ": not valid JSON (" + e.what() + ")");
  }
  return parse_model_document(doc, source);
}

ModelDescription parse_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path + ": cannot open the model file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ModelFileError(path + ": cannot read the model file");
  return parse_model_json(text.str(), path);
}

bool is_zoo_name(const std::string& name) {
  for (const auto& z : model_names()) {
    if (z == name) return true;
  }
  return false;
}

ModelDescription load_model(const std::string& zoo_name_or_file, const ModelConfig& zoo_sizes) {
  if (!is_zoo_name(zoo_name_or_file)) {
    if (!std::ifstream(zoo_name_or_file)) {
      std::string list;
      for (const auto& z : model_names()) list += z + ", ";
      throw ModelFileError("unknown model '" + zoo_name_or_file + "' (expected one of " + list +
                           "or a readable model file)");
    }
    return parse_model_file(zoo_name_or_file);
  }
  ModelConfig c = zoo_sizes;
  c.model = zoo_name_or_file;
  return parse_model_document(zoo_document(c), "zoo:" + c.model);
}

std::unique_ptr<autodiff::JoinModel> build(const ModelDescription& m, std::int64_t batch,
                                           std::uint64_t seed, kernels::Allocator& parameters,
                                           std::shared_ptr<autodiff::SequenceLengths> lengths) {
  if (batch <= 0 || batch > kMaxDim) {
    throw std::invalid_argument("batch must be in [1, " + std::to_string(kMaxDim) + "], got " +
                                std::to_string(batch));
  }
  Builder b{batch, seed, parameters, lengths};
  std::vector<std::unique_ptr<autodiff::Encoder>> encoders;
  for (const EncoderSpec& e : m.encoders) {
    encoders.push_back(std::make_unique<autodiff::Encoder>(e.name, b.layers(e.layers, true), e.stage_ends));
  }
  for (std::size_t e = 0; e < encoders.size(); ++e) encoders[e]->initialize(seed * 1000 + e);
  std::vector<int> branch_encoder;
  for (const BranchSpec& s : m.branches) branch_encoder.push_back(s.encoder);
  auto model = std::make_unique<autodiff::JoinModel>(m.name, std::move(encoders), branch_encoder,
                                                     autodiff::LossHead(m.loss, m.margin));
  model->set_lengths(std::move(lengths));
  return model;
}

std::vector<std::string> parameter_names(const ModelDescription& m) {
  std::vector<std::string> out;
  for (const EncoderSpec& e : m.encoders) names_of(e.layers, "encoders." + e.name + ".layers", out);
  return out;
}

}  // namespace rematch::models
