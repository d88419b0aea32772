// Built with `c++ pkgconfig.cpp $(pkg-config --cflags --libs perkrec_compiled)` against the
// installed tree: declarations from the headers, definitions from libperkrec_compiled.a.
#include <cstdlib>
#include <iostream>

#include <perkrec/perkrec.hpp>

int main() {
  perkrec::SimulatorParams params;
  params.n_users = 200;
  const perkrec::SimulatedProgram program = perkrec::simulate(params);
  if (program.events.size() == 0) return EXIT_FAILURE;
  std::cout << "pkg-config consumer ok: perkrec " << perkrec::version_string << ", "
            << program.events.size() << " events\n";
  return EXIT_SUCCESS;
}
