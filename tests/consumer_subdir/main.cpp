// One small header of the header-only library, built inside the consumer's own build: the
// popularity baseline on a 3 x 3 matrix, checked against its known answer.
#include <cstdlib>
#include <iostream>
#include <vector>

#include <perkrec/models/popularity.hpp>

int main() {
  perkrec::CsrMatrix<float> m;
  m.rows = 3;
  m.cols = 3;
  m.indptr = {0, 2, 3, 4};
  m.indices = {0, 2, 2, 1};
  m.data = {1, 1, 1, 1};
  perkrec::Popularity model;
  model.fit(m.view());
  const std::vector<perkrec::Index> users = {0};
  const perkrec::TopK top = model.recommend(users, 3);
  // Benefit 2: 2 of 3 members; then 0 and 1 (1 each, lower index first).
  if (top.ids != std::vector<perkrec::Index>{2, 0, 1}) {
    std::cerr << "unexpected ranking\n";
    return EXIT_FAILURE;
  }
  std::cout << "subproject consumer ok\n";
  return EXIT_SUCCESS;
}
