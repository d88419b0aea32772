// Simulate a loyalty program, split it in time, fit the popularity baseline, and report its
// NDCG@10 on the members' next claims and redemptions.
//
//   ./perkrec_example_simulate [members]
#include <cstdlib>
#include <iostream>

#include <perkrec/perkrec.hpp>

int main(int argc, char** argv) {
  try {
    perkrec::SimulatorParams params;
    params.n_users = argc > 1 ? std::atoi(argv[1]) : 5000;
    const perkrec::SimulatedProgram program = perkrec::simulate(params);
    const perkrec::EventLog& log = program.events;
    std::cout << "members " << log.n_users() << ", benefits " << log.n_benefits() << ", events "
              << log.size() << "\n";

    const perkrec::Timestamp cut = log.max_time() - 30 * perkrec::kSecondsPerDay;
    const perkrec::Split split = perkrec::split_by_time(log, cut);
    perkrec::InteractionParams weights;
    weights.cut_time = cut;
    const perkrec::InteractionMatrix train =
        perkrec::build_interaction_matrix(split.train, weights);
    perkrec::InteractionParams test_weights;
    test_weights.event_weights = {0, 0, 1, 1, 0, 0};  // what members claimed or redeemed next
    const perkrec::InteractionMatrix test =
        perkrec::build_interaction_matrix(split.test, test_weights);

    perkrec::Popularity model;
    model.fit(train.view());
    std::vector<perkrec::Index> users(static_cast<std::size_t>(log.n_users()));
    for (perkrec::Index u = 0; u < log.n_users(); ++u) users[static_cast<std::size_t>(u)] = u;
    const perkrec::TopK top = model.recommend(users, 10);
    const perkrec::RankingMetrics m = perkrec::ranking_metrics(top.ids, 10, test.view());
    std::cout << "popularity: ndcg@10 " << m.ndcg << ", precision@10 " << m.precision
              << ", members evaluated " << m.rows_evaluated << "\n";
    return 0;
  } catch (const perkrec::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
