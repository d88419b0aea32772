// The allocator with inventory limits at scale, in C++ alone (no Python in the timing): the
// instance of bench/allocate.py (synthetic(), seed 5) with inventory n_users / 50 on every tenth
// of its 200 benefits, budget 2% of the total cost, 1 per member, or 2 per member and 1 per kind
// over 5 kinds. Prints wall and CPU seconds, multiplier evaluations, value / dual bound, and
// check_allocation's verdict (empty = every limit holds).
//
//   .venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); from allocate import synthetic; \
//     c = synthetic(10_000_000, 50, 200, seed=5); \
//     [c[k].tofile(f'/tmp/alloc/10000000_{k}.bin') for k in ('offsets', 'benefit', 'value',
//     'cost')]"
//   g++ -std=c++17 -O2 -fopenmp -DPERKREC_HEADER_ONLY -Iinclude -I/usr/include/eigen3 \
//     bench/allocate_inventory.cpp -o /tmp/allocate_inventory
//   /tmp/allocate_inventory /tmp/alloc 10000000 1      # then ... 2 for two per member
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "perkrec/decide/allocation_check.hpp"
#include "perkrec/decide/allocator.hpp"

template <class T>
std::vector<T> read_array(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  const auto bytes = static_cast<std::size_t>(in.tellg());
  in.seekg(0);
  std::vector<T> v(bytes / sizeof(T));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  return v;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DIR N_USERS PER_MEMBER\n", argv[0]);
    return 2;
  }
  const std::string prefix = std::string(argv[1]) + "/" + argv[2] + "_";
  const int per_member = std::atoi(argv[3]);
  const auto offsets = read_array<std::int64_t>(prefix + "offsets.bin");
  const auto benefit = read_array<std::int32_t>(prefix + "benefit.bin");
  const auto value = read_array<float>(prefix + "value.bin");
  const auto cost = read_array<float>(prefix + "cost.bin");
  perkrec::CandidatesView c;
  c.n_users = static_cast<perkrec::Index>(offsets.size() - 1);
  c.n_benefits = 200;
  c.offsets = {offsets.data(), offsets.size()};
  c.benefit = {benefit.data(), benefit.size()};
  c.value = {value.data(), value.size()};
  c.cost = {cost.data(), cost.size()};
  double total = 0;
  for (float x : cost) total += x;
  perkrec::AllocationConstraints k;
  k.budget = 0.02 * total;
  k.max_per_member = per_member;
  k.inventory.assign(200, -1);
  for (int b = 0; b < 200; b += 10) k.inventory[static_cast<std::size_t>(b)] = c.n_users / 50;
  if (per_member > 1) {
    k.benefit_kind.resize(200);
    for (int b = 0; b < 200; ++b) k.benefit_kind[static_cast<std::size_t>(b)] = b % 5;
    k.n_kinds = 5;
    k.max_per_kind = 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  const perkrec::Allocation a = perkrec::allocate(c, k);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  std::printf(
      "%d per member: wall %.1f s, cpu %.1f s, %d evaluations, value %.1f, cost %.1f / %.1f, "
      "value/bound %.6f, %zu issued, check '%s'\n",
      per_member, wall, cpu, a.iterations, a.value, a.cost, k.budget, a.value / a.dual_bound,
      a.candidate.size(), perkrec::check_allocation(c, k, a).c_str());
  return 0;
}
