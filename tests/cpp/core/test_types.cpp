#include <cstdint>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

// scipy's CSR arrays carry 32-bit row offsets by default: CsrView32 widens them and lends the
// rest, so a model fitted through it equals one fitted through 64-bit offsets.
TEST(CsrView32, WidensScipyStyleOffsetsAndValidates) {
  const std::vector<std::int32_t> indptr32 = {0, 2, 3, 4};
  const std::vector<Index> indices = {0, 2, 2, 1};
  const std::vector<float> data = {1, 1, 1, 1};
  const CsrView32<float> m(3, 3, indptr32.data(), indices.data(), data.data());
  const CsrView<float> v = m.view();
  ASSERT_EQ(v.nnz(), 4);
  EXPECT_EQ(v.row_begin(2), 3);
  EXPECT_EQ(v.indices, indices.data());  // lent, not copied
  v.validate("m", true);
  CsrMatrix<float> wide;
  wide.rows = wide.cols = 3;
  wide.indptr = {0, 2, 3, 4};
  wide.indices = indices;
  wide.data = data;
  Popularity a, b;
  a.fit(v);
  b.fit(wide.view());
  EXPECT_EQ(a.benefit_scores(), b.benefit_scores());

  const std::vector<std::int32_t> bad = {0, 3, 2, 4};
  const CsrView32<float> decreasing(3, 3, bad.data(), indices.data(), data.data());
  PERKREC_EXPECT_THROW_MSG(decreasing.view().validate("m"), InputError,
                           "indptr decreases at row 1");
  const CsrView32<float> null_offsets(3, 3, nullptr, indices.data(), data.data());
  PERKREC_EXPECT_THROW_MSG(null_offsets.view().validate("m"), InputError, "indptr is null");
}

}  // namespace
}  // namespace perkrec
