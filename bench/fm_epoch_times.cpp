// FM training seconds per epoch on the synthetic problem of bench/fm_vs_peers.py's throughput
// (one-hot rows, 30 fields x 1,000 values, 8 factors, labels 30% positive, learning rate 0.01),
// timed epoch by epoch through the progress callback, with what else ran on the machine: for
// each epoch it prints wall seconds, the cores other processes used on average (from
// /proc/stat, minus this process's CPU time), and this process's CPU seconds. On a shared
// machine that tells a clean two-thread epoch from one that had a core taken away. Then a
// fingerprint of the model (FNV-1a of the bias, linear weights and factors): identical for
// two builds means bit-identical one-thread training.
//
//   g++ -std=c++17 -O3 -DNDEBUG -fopenmp -Iinclude bench/fm_epoch_times.cpp -o /tmp/fm_epoch_times
//   /tmp/fm_epoch_times ROWS sgd|adagrad THREADS EPOCHS
//
// bench/fm_threads_ab.py runs builds of it side by side and summarizes.
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "perkrec/models/fm.hpp"

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// CPU seconds all processes have used (user, nice, system, irq, softirq, steal; 100 ticks/s).
double machine_busy_seconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / 100.0;
}

std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace perkrec;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ROWS sgd|adagrad THREADS EPOCHS\n", argv[0]);
    return 2;
  }
  const Index rows = std::atoi(argv[1]);
  const std::string optimizer = argv[2];
  const int threads = std::atoi(argv[3]), epochs = std::atoi(argv[4]);
  const int fields = 30, per_field = 1000;
  std::mt19937_64 rng(0);
  std::vector<Offset> indptr(static_cast<std::size_t>(rows) + 1, 0);
  std::vector<Index> indices(static_cast<std::size_t>(rows) * fields);
  std::vector<float> values(indices.size(), 1.0f), labels(static_cast<std::size_t>(rows));
  for (std::size_t r = 0; r < labels.size(); ++r) {
    indptr[r + 1] = indptr[r] + fields;
    for (int f = 0; f < fields; ++f) {
      indices[r * fields + f] = f * per_field + static_cast<Index>(rng() % per_field);
    }
    labels[r] = rng() % 10 < 3 ? 1.0f : 0.0f;
  }
  std::vector<std::int32_t> feature_fields(static_cast<std::size_t>(fields) * per_field);
  for (std::size_t i = 0; i < feature_fields.size(); ++i) {
    feature_fields[i] = static_cast<std::int32_t>(i / per_field);
  }
  const CsrView<float> X{rows, fields * per_field, indptr.data(), indices.data(), values.data()};
  FMTarget target;
  target.labels = Span<const float>(labels.data(), labels.size());
  FMParams params;
  params.factors = 8;
  params.epochs = epochs;
  params.learning_rate = 0.01f;
  params.num_threads = threads;
  params.optimizer = optimizer == "sgd" ? FMParams::Optimizer::sgd : FMParams::Optimizer::adagrad;
  FM model(params);
  std::vector<double> wall, busy, own;
  Callbacks callbacks;
  callbacks.progress = [&](const std::string&, Offset, Offset) {  // before and after each epoch
    wall.push_back(seconds_now());
    busy.push_back(machine_busy_seconds());
    own.push_back(own_cpu_seconds());
  };
  model.fit(X, target, Span<const std::int32_t>(feature_fields.data(), feature_fields.size()),
            fields, nullptr, nullptr, callbacks);
  std::printf("%s %d", optimizer.c_str(), threads);
  for (std::size_t e = 1; e < wall.size(); ++e) {
    const double seconds = wall[e] - wall[e - 1], cpu = own[e] - own[e - 1];
    const double others = (busy[e] - busy[e - 1]) - cpu;
    std::printf(" %.4f/%.2f/%.4f", seconds, others / seconds, cpu);
  }
  std::uint64_t h = 1469598103934665603ULL;
  const float bias = model.bias();
  h = fnv1a(&bias, sizeof bias, h);
  h = fnv1a(model.linear().data(), model.linear().size() * sizeof(float), h);
  h = fnv1a(model.factors().data(), model.factors().size() * sizeof(float), h);
  std::printf(" model %016llx\n", static_cast<unsigned long long>(h));
  return 0;
}
