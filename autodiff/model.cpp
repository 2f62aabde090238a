#include "autodiff/model.hpp"

#include <stdexcept>

namespace rematch::autodiff {

JoinModel::JoinModel(std::string name, std::vector<std::unique_ptr<Encoder>> encoders,
                     std::vector<int> branch_encoder, LossHead loss)
    : name_(std::move(name)),
      encoders_(std::move(encoders)),
      branch_encoder_(std::move(branch_encoder)),
      loss_(std::move(loss)) {
  if (static_cast<int>(branch_encoder_.size()) != loss_.inputs()) {
    throw std::invalid_argument("model " + name_ + ": the " + loss_.name() + " loss reads " +
                                std::to_string(loss_.inputs()) + " branches, got " +
                                std::to_string(branch_encoder_.size()));
  }
  for (int e : branch_encoder_) {
    if (e < 0 || e >= static_cast<int>(encoders_.size())) {
      throw std::invalid_argument("model " + name_ + ": branch uses a missing encoder");
    }
  }
  const BlockShape& out = encoder_of(0).output_shape(encoder_of(0).stages() - 1);
  for (int j = 1; j < branches(); ++j) {
    const BlockShape& o = encoder_of(j).output_shape(encoder_of(j).stages() - 1);
    if (o.rows != out.rows || o.cols != out.cols) {
      throw std::invalid_argument("model " + name_ + ": branch " + std::to_string(j) +
                                  " outputs " + std::to_string(o.rows) + " x " +
                                  std::to_string(o.cols) + ", branch 0 " +
                                  std::to_string(out.rows) + " x " + std::to_string(out.cols));
    }
  }
}

std::size_t JoinModel::parameter_bytes() const {
  std::size_t total = 0;
  for (const auto& e : encoders_) total += e->parameter_bytes();
  return total;
}

void JoinModel::set_activation_precision(Precision precision) {
  for (auto& e : encoders_) e->set_precision(precision);
}

float JoinModel::run_loss(std::span<const Stored* const> outputs, std::vector<Stored>& grads,
                          kernels::Allocator& scratch) {
  std::vector<Fp32View> views;
  std::vector<const Tensor*> fp32;
  std::vector<Tensor> dy;
  for (const Stored* o : outputs) {
    views.push_back(o->view(scratch));
    dy.emplace_back(o->shape(), false, scratch, kernels::Uninitialised{});  // packed whole by the loss head
  }
  for (const Fp32View& v : views) fp32.push_back(&v.get());
  const float loss = loss_.run(fp32, dy, scratch);
  views.clear();
  grads.clear();
  for (std::size_t j = 0; j < dy.size(); ++j) {
    grads.push_back(encoder_of(int(j)).store(std::move(dy[j]), scratch));
  }
  return loss;
}

void JoinModel::set_scratch_allocator(kernels::Allocator* allocator) {
  for (auto& e : encoders_) e->set_scratch_allocator(allocator);
}

void JoinModel::set_step(std::int64_t step) {
  for (auto& e : encoders_) e->set_step(step);
}

}  // namespace rematch::autodiff
