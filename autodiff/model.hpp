// A join model for the runtime (docs/model.md#graphs): k branches, each running an Encoder, meeting
// in one LossHead. Branches may share an encoder (siamese, triplet: shared weights) or not
// (cross-modal).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "autodiff/encoder.hpp"
#include "autodiff/loss_head.hpp"
#include "autodiff/sequence_mask.hpp"

namespace rematch::autodiff {

class JoinModel {
 public:
  // branch_encoder[j]: index into `encoders` of the encoder branch j runs.
  JoinModel(std::string name, std::vector<std::unique_ptr<Encoder>> encoders,
            std::vector<int> branch_encoder, LossHead loss);

  const std::string& name() const { return name_; }
  int branches() const { return static_cast<int>(branch_encoder_.size()); }
  Encoder& encoder_of(int branch) { return *encoders_[branch_encoder_[branch]]; }
  const Encoder& encoder_of(int branch) const { return *encoders_[branch_encoder_[branch]]; }
  int encoder_index(int branch) const { return branch_encoder_[branch]; }
  int encoders() const { return static_cast<int>(encoders_.size()); }
  Encoder& encoder(int e) { return *encoders_[e]; }
  const Encoder& encoder(int e) const { return *encoders_[e]; }
  LossHead& loss() { return loss_; }
  const LossHead& loss() const { return loss_; }

  std::size_t parameter_bytes() const;
  // Encoder::set_precision on every encoder (before profiling: it changes the sizes).
  void set_activation_precision(Precision precision);
  // The loss op on the stored branch outputs (widened to fp32 in `scratch`): the mean loss,
  // and in `grads` every branch's d loss / d output, stored as its encoder stores.
  float run_loss(std::span<const Stored* const> outputs, std::vector<Stored>& grads,
                 kernels::Allocator& scratch);
  void set_scratch_allocator(kernels::Allocator* allocator);
  // Layer::set_step on every encoder's layers.
  void set_step(std::int64_t step);
  // Models of varying-length sequences (autodiff/sequence_mask.hpp): the per-branch lengths
  // their masking layers read. select_branch names the branch whose op runs next.
  void set_lengths(std::shared_ptr<SequenceLengths> lengths) { lengths_ = std::move(lengths); }
  SequenceLengths* lengths() { return lengths_.get(); }
  void select_branch(int branch) {
    if (lengths_) lengths_->branch = branch;
  }

 private:
  std::string name_;
  std::vector<std::unique_ptr<Encoder>> encoders_;
  std::vector<int> branch_encoder_;
  LossHead loss_;
  std::shared_ptr<SequenceLengths> lengths_;
};

}  // namespace rematch::autodiff
