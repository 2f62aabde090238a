#include "models/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

namespace rematch::models {
namespace {

constexpr char kMagic[8] = {'R', 'E', 'M', 'A', 'T', 'C', 'H', 'W'};
constexpr std::uint32_t kVersion = 1;

// The fields that fix the shapes of the weights.
struct Header {
  std::int64_t depth, width, embedding, tensors;
};

std::vector<autodiff::Tensor*> all_parameters(autodiff::JoinModel& model) {
  std::vector<autodiff::Tensor*> out;
  for (int e = 0; e < model.encoders(); ++e) {
    for (autodiff::Tensor* p : model.encoder(e).parameters()) out.push_back(p);
  }
  return out;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError("checkpoint " + path + ": " + what);
}

}  // namespace

void save_weights(const std::string& path, const ModelConfig& config, autodiff::JoinModel& model) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail(path, std::string("cannot write ") + tmp + ": " + std::strerror(errno));
  const auto params = all_parameters(model);
  const Header h{config.depth, config.width, config.embedding,
                 static_cast<std::int64_t>(params.size())};
  const std::uint32_t name_length = static_cast<std::uint32_t>(config.model.size());
  bool ok = std::fwrite(kMagic, 1, sizeof kMagic, f) == sizeof kMagic &&
            std::fwrite(&kVersion, sizeof kVersion, 1, f) == 1 &&
            std::fwrite(&name_length, sizeof name_length, 1, f) == 1 &&
            std::fwrite(config.model.data(), 1, name_length, f) == name_length &&
            std::fwrite(&h, sizeof h, 1, f) == 1;
  for (autodiff::Tensor* p : params) {
    if (!ok) break;
    std::vector<float> plain(std::size_t(p->shape.rows * p->shape.cols));
    kernels::unpack(*p, plain);
    const std::int64_t dims[2] = {p->shape.rows, p->shape.cols};
    ok = std::fwrite(dims, sizeof dims, 1, f) == 1 &&
         std::fwrite(plain.data(), sizeof(float), plain.size(), f) == plain.size();
  }
  ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    fail(path, "write failed: " + reason);
  }
}

void load_weights(const std::string& path, const ModelConfig& config, autodiff::JoinModel& model) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open it");
  char magic[8];
  std::uint32_t version = 0, name_length = 0;
  in.read(magic, sizeof magic);
  if (!in || std::memcmp(magic, kMagic, sizeof magic) != 0) fail(path, "not a rematch weight file");
  in.read(reinterpret_cast<char*>(&version), sizeof version);
  if (!in || version != kVersion) fail(path, "unsupported version " + std::to_string(version));
  in.read(reinterpret_cast<char*>(&name_length), sizeof name_length);
  if (!in || name_length > 256) fail(path, "truncated header");
  std::string name(name_length, '\0');
  in.read(name.data(), name_length);
  Header h{};
  in.read(reinterpret_cast<char*>(&h), sizeof h);
  if (!in) fail(path, "truncated header");
  const auto params = all_parameters(model);
  auto expect = [&](const char* field, std::int64_t got, std::int64_t want) {
    if (got != want) {
      fail(path, std::string("written for ") + field + " " + std::to_string(got) + ", this model has " +
                     std::to_string(want));
    }
  };
  if (name != config.model) fail(path, "written for model " + name + ", not " + config.model);
  expect("depth", h.depth, config.depth);
  expect("width", h.width, config.width);
  expect("embedding", h.embedding, config.embedding);
  expect("tensor count", h.tensors, static_cast<std::int64_t>(params.size()));
  for (std::size_t t = 0; t < params.size(); ++t) {
    std::int64_t dims[2];
    in.read(reinterpret_cast<char*>(dims), sizeof dims);
    if (!in) fail(path, "truncated at tensor " + std::to_string(t));
    if (dims[0] != params[t]->shape.rows || dims[1] != params[t]->shape.cols) {
      fail(path, "tensor " + std::to_string(t) + " is " + std::to_string(dims[0]) + " x " +
                     std::to_string(dims[1]) + ", the model's " +
                     std::to_string(params[t]->shape.rows) + " x " +
                     std::to_string(params[t]->shape.cols));
    }
    std::vector<float> plain(std::size_t(dims[0] * dims[1]));
    in.read(reinterpret_cast<char*>(plain.data()), std::streamsize(plain.size() * sizeof(float)));
    if (!in) fail(path, "truncated at tensor " + std::to_string(t));
    kernels::pack_into(plain, *params[t]);
  }
  if (in.peek() != std::ifstream::traits_type::eof()) fail(path, "trailing data after the last tensor");
}

}  // namespace rematch::models
