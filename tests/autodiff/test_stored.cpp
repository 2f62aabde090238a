// Tensors kept in bf16: the whole-tensor conversions round exactly as the scalar reference
// (kernels::to_bf16, nearest even) on every class of value, a bf16 tensor takes half the arena
// bytes, and reading it back gives the rounded values.
#include "autodiff/stored.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "autodiff/arena.hpp"
#include "kernels/bf16.hpp"

namespace rematch::autodiff {
namespace {

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Edge cases (signed zeros, denormals, halfway ties to both evens, the overflow to infinity,
// infinities, NaNs whose payload is only in the bits rounding drops), then random bit patterns:
// enough values that the conversion runs threaded.
std::vector<float> hard_values() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::bit_cast<float>(0x7f800001u), std::bit_cast<float>(0xffc00001u),
                          std::bit_cast<float>(0x3f808000u),   // tie, even below: rounds down
                          std::bit_cast<float>(0x3f818000u),   // tie, odd below: rounds up
                          std::bit_cast<float>(0x3f808001u),   // just above a tie
                          std::bit_cast<float>(0x7f7f8000u)};  // tie at the largest finite: to infinity
  std::mt19937 rng(3);
  while (v.size() < (1u << 17)) v.push_back(std::bit_cast<float>(std::uint32_t(rng())));
  return v;
}

TEST(Bf16Conversion, NarrowRoundsAsTheScalarReferenceAndWidenIsExact) {
  const std::vector<float> v = hard_values();
  std::vector<kernels::bfloat16> h(v.size());
  kernels::narrow(v, h);
  std::vector<float> back(v.size());
  kernels::widen(h, back);
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(h[i].bits, kernels::to_bf16(v[i]).bits) << "value " << i << " bits " << bits(v[i]);
    ASSERT_EQ(bits(back[i]), bits(kernels::to_float(h[i]))) << "value " << i;
    if (std::isnan(v[i])) {
      ASSERT_TRUE(std::isnan(back[i])) << "value " << i;
    }
  }
  EXPECT_EQ(bits(kernels::to_float(kernels::to_bf16(std::bit_cast<float>(0x3f808000u)))), 0x3f800000u);
  EXPECT_EQ(bits(kernels::to_float(kernels::to_bf16(std::bit_cast<float>(0x3f818000u)))), 0x3f820000u);
  EXPECT_TRUE(std::isinf(kernels::to_float(kernels::to_bf16(std::bit_cast<float>(0x7f7f8000u)))));
}

TEST(Bf16Conversion, SpansOfDifferentLengthsAreRefused) {
  std::vector<float> v(4);
  std::vector<kernels::bfloat16> h(3);
  EXPECT_THROW(kernels::narrow(v, h), std::invalid_argument);
  EXPECT_THROW(kernels::widen(h, v), std::invalid_argument);
}

TEST(Stored, Bf16TakesHalfTheArenaBytesAndReadsBackTheRoundedValues) {
  Arena arena("a");
  const BlockShape shape{100, 70, 32, 32, false};  // partial blocks: padding stays zero
  std::vector<float> plain(std::size_t(shape.rows * shape.cols));
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (float& x : plain) x = normal(rng);
  Tensor t(shape, false, arena);
  kernels::pack_into(plain, t);
  const std::size_t fp32_bytes = t.data.bytes();
  EXPECT_EQ(fp32_bytes, stored_bytes(shape, Precision::fp32));

  const Stored kept(std::move(t), Precision::bf16, arena);
  EXPECT_EQ(kept.precision(), Precision::bf16);
  EXPECT_EQ(kept.bytes(), stored_bytes(shape, Precision::bf16));
  EXPECT_EQ(2 * kept.bytes(), fp32_bytes);
  EXPECT_EQ(arena.in_use(), kept.bytes()) << "the fp32 tensor was freed";
  EXPECT_TRUE(kept.shape() == shape);
  {
    const Fp32View view = kept.view(arena);
    EXPECT_EQ(arena.in_use(), kept.bytes() + fp32_bytes) << "the widened copy is arena scratch";
    std::vector<float> read(plain.size());
    kernels::unpack(view.get(), read);
    for (std::size_t i = 0; i < plain.size(); ++i) {
      ASSERT_EQ(bits(read[i]), bits(kernels::to_float(kernels::to_bf16(plain[i])))) << i;
    }
  }
  EXPECT_EQ(arena.in_use(), kept.bytes()) << "the view's copy is freed with it";
}

TEST(Stored, Fp32IsKeptInPlaceAndTakenWithoutACopy) {
  Arena arena("a");
  Tensor t({8, 8, 8, 8, false}, false, arena);
  t.data.data()[3] = 1.5f;
  const float* where = t.data.data();
  Stored kept(std::move(t), Precision::fp32, arena);
  EXPECT_EQ(kept.view(arena).get().data.data(), where);
  EXPECT_EQ(arena.in_use(), kept.bytes());
  const Tensor back = std::move(kept).take(arena);
  EXPECT_EQ(back.data.data(), where);
  EXPECT_FALSE(kept.held());
  EXPECT_EQ(Fp32View().get().data.size(), 0u);
}

TEST(Precision, NamesParseAndAnythingElseIsRefusedByName) {
  EXPECT_EQ(parse_precision("fp32"), Precision::fp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(to_string(Precision::bf16), "bf16");
  try {
    parse_precision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fp16'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rematch::autodiff
