// Built by an outside CMake project against the installed perkrec: exercises the header-only
// library end to end and exits non-zero on any mismatch.
#include <cstdlib>
#include <iostream>

#include <perkrec/perkrec.hpp>

int main() {
  perkrec::SimulatorParams params;
  params.n_users = 500;
  const perkrec::SimulatedProgram program = perkrec::simulate(params);
  const perkrec::InteractionMatrix m = perkrec::build_interaction_matrix(program.events);
  perkrec::Popularity model;
  model.fit(m.view());
  const perkrec::Popularity back = perkrec::Popularity::from_bytes(model.to_bytes());
  const std::vector<perkrec::Index> users = {0, 1, 2};
  if (back.recommend(users, 5).ids != model.recommend(users, 5).ids) {
    std::cerr << "round trip changed the recommendations\n";
    return EXIT_FAILURE;
  }
  try {
    perkrec::ModelReader::from_bytes("not a model");
    return EXIT_FAILURE;
  } catch (const perkrec::ModelFormatError&) {
  }
  std::cout << "perkrec " << perkrec::version_string << " consumer ok: " << program.events.size()
            << " events, " << program.catalog.size() << " benefits\n";
  return EXIT_SUCCESS;
}
