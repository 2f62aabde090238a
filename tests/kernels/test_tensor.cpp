#include <gtest/gtest.h>

#include "kernels/tensor.hpp"
#include "tests/kernels/helpers.hpp"

namespace rematch::kernels {
namespace {

TEST(BlockedLayout, PackThenUnpackRoundTripsShapesThatDoNotDivideTheBlocks) {
  const BlockShape s{37, 53, 16, 32};
  const auto plain = test::random_vector(37 * 53, 1);
  const BlockedMatrix m = pack(plain, s);
  std::vector<float> back(plain.size());
  unpack(m, back);
  EXPECT_EQ(back, plain);
}

TEST(BlockedLayout, ColumnPanelOrderKeepsEachColumnOfBlocksContiguous) {
  const BlockShape s{9, 7, 4, 4, true};
  std::vector<float> plain(63);
  for (int i = 0; i < 63; ++i) plain[i] = float(i);  // element (r, c) = 7 r + c
  const BlockedMatrix m = pack(plain, s);
  EXPECT_EQ(m.data.data()[1 * 16], 28.0f);  // second block in memory: block row 1, block column 0
  EXPECT_EQ(m.data.data()[3 * 16], 4.0f);   // fourth: block row 0, block column 1
  std::vector<float> back(63);
  unpack(m, back);
  EXPECT_EQ(back, plain);
  BlockedMatrix t(transposed(s));
  transpose_into(m, t);
  unpack(t, back);
  for (int r = 0; r < 9; ++r)
    for (int c = 0; c < 7; ++c) ASSERT_EQ(back[c * 9 + r], plain[r * 7 + c]);
}

TEST(BlockedLayout, PackZeroFillsThePadding) {
  const BlockShape s{5, 3, 4, 4};
  const std::vector<float> plain(15, 1.0f);
  const BlockedMatrix m = pack(plain, s);
  ASSERT_EQ(m.data.size(), 16u * 2u);
  float sum = 0.0f;
  for (float v : m.data.span()) sum += v;
  EXPECT_EQ(sum, 15.0f);
  EXPECT_EQ(m.block(0, 0)[3], 0.0f);      // row 0, column 3 is padding
  EXPECT_EQ(m.block(1, 0)[0], 1.0f);      // row 4, column 0
  EXPECT_EQ(m.block(1, 0)[1 * 4], 0.0f);  // row 5 is padding
}

TEST(BlockedLayout, DataIsCacheLineAligned) {
  const BlockedMatrix m(BlockShape{3, 3, 2, 2});
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data.data()) % kAlignment, 0u);
}

TEST(BlockedLayout, BlockwiseTransposeEqualsPlainTranspose) {
  const BlockShape s{19, 41, 8, 16};
  const auto plain = test::random_vector(19 * 41, 2);
  BlockedMatrix t(transposed(s));
  transpose_into(pack(plain, s), t);
  std::vector<float> got(plain.size());
  unpack(t, got);
  for (int r = 0; r < 19; ++r) {
    for (int c = 0; c < 41; ++c) ASSERT_EQ(got[c * 19 + r], plain[r * 41 + c]);
  }
}

TEST(Bf16, ConversionRoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(to_float(to_bf16(1.0f + 0x1.0p-8f)), 1.0f);              // tie goes to even
  EXPECT_EQ(to_float(to_bf16(1.0f + 3 * 0x1.0p-8f)), 1.0f + 0x1.0p-6f);  // tie goes to even (up)
  EXPECT_EQ(to_float(to_bf16(1.0f + 0x1.0p-7f + 0x1.0p-12f)), 1.0f + 0x1.0p-7f);
  EXPECT_TRUE(std::isnan(to_float(to_bf16(std::nanf("")))));
}

TEST(Bf16, VnniLayoutInterleavesPairsOfRows) {
  const BlockShape s{4, 3, 4, 3};
  std::vector<float> plain(12);
  for (int i = 0; i < 12; ++i) plain[i] = float(i);  // element (r, c) = 3 r + c
  const BlockedBf16 v = to_bf16(pack(plain, s), true);
  // (r, c) at (r / 2) * 2 * 3 + 2 * c + r % 2
  EXPECT_EQ(to_float(v.data.data()[0]), 0.0f);  // (0,0)
  EXPECT_EQ(to_float(v.data.data()[1]), 3.0f);  // (1,0)
  EXPECT_EQ(to_float(v.data.data()[2]), 1.0f);  // (0,1)
  EXPECT_EQ(to_float(v.data.data()[6]), 6.0f);  // (2,0)
  EXPECT_EQ(to_float(v.data.data()[7]), 9.0f);  // (3,0)
}

TEST(BlockedLayout, BadShapesAndSizesThrowNamedErrors) {
  EXPECT_THROW(BlockedMatrix(BlockShape{0, 3, 2, 2}), std::invalid_argument);
  EXPECT_THROW(BlockedMatrix(BlockShape{3, 3, 2, 0}), std::invalid_argument);
  EXPECT_THROW(BlockedBf16(BlockShape{4, 4, 3, 4}, true), std::invalid_argument);
  const std::vector<float> wrong(7);
  try {
    pack(wrong, BlockShape{2, 3, 2, 2});
    FAIL() << "pack accepted a wrongly sized matrix";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("pack"), std::string::npos);
  }
  BlockedMatrix t(BlockShape{3, 3, 2, 2});
  EXPECT_THROW(transpose_into(BlockedMatrix(BlockShape{3, 4, 2, 2}), t), std::invalid_argument);
  EXPECT_EQ(choose_block(100, 64), 64);
  EXPECT_EQ(choose_block(7, 64, 2), 8);
}

}  // namespace
}  // namespace rematch::kernels
