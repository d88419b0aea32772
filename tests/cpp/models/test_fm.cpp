#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <type_traits>

#include "perkrec/detail/fm_kernels.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

// A planted FM: `fields` fields of `per_field` features, one active feature per field per row.
struct Planted {
  CsrMatrix<float> X;
  std::vector<float> y;
  std::vector<float> truth;  // true probabilities
  std::vector<std::int32_t> feature_fields;
  std::int32_t fields = 0;
};

Planted planted(Index rows, int fields, int per_field, int k, std::uint64_t seed,
                bool with_values = false) {
  Rng rng(seed);
  const Index nf = fields * per_field;
  std::vector<float> w(static_cast<std::size_t>(nf)), v(static_cast<std::size_t>(nf) * k);
  for (auto& x : w) x = static_cast<float>(rng.normal(0, 0.3));
  for (auto& x : v) x = static_cast<float>(rng.normal(0, 0.6));
  Planted p;
  p.fields = fields;
  p.X.rows = rows;
  p.X.cols = nf;
  for (Index f = 0; f < nf; ++f) p.feature_fields.push_back(f / per_field);
  for (Index r = 0; r < rows; ++r) {
    std::vector<float> sum(static_cast<std::size_t>(k), 0.0f);
    double s = -0.5, sq = 0.0;
    for (int f = 0; f < fields; ++f) {
      const Index i =
          f * per_field + static_cast<Index>(rng.below(static_cast<std::uint32_t>(per_field)));
      const float x = with_values ? static_cast<float>(rng.uniform(0.5, 1.5)) : 1.0f;
      p.X.indices.push_back(i);
      p.X.data.push_back(x);
      s += w[static_cast<std::size_t>(i)] * x;
      for (int q = 0; q < k; ++q) {
        const double t = v[static_cast<std::size_t>(i) * k + q] * x;
        sum[static_cast<std::size_t>(q)] += static_cast<float>(t);
        sq += t * t;
      }
    }
    double dot = 0;
    for (float t : sum) dot += static_cast<double>(t) * t;
    s += 0.5 * (dot - sq);
    const double prob = 1.0 / (1.0 + std::exp(-s));
    p.truth.push_back(static_cast<float>(prob));
    p.y.push_back(rng.bernoulli(prob) ? 1.0f : 0.0f);
    p.X.indptr.push_back(static_cast<Offset>(p.X.indices.size()));
  }
  return p;
}

CsrMatrix<float> slice(const CsrMatrix<float>& m, Index begin, Index end) {
  CsrMatrix<float> out;
  out.rows = end - begin;
  out.cols = m.cols;
  for (Index r = begin; r < end; ++r) {
    for (Offset e = m.indptr[r]; e < m.indptr[r + 1]; ++e) {
      out.indices.push_back(m.indices[static_cast<std::size_t>(e)]);
      out.data.push_back(m.data[static_cast<std::size_t>(e)]);
    }
    out.indptr.push_back(static_cast<Offset>(out.indices.size()));
  }
  return out;
}

std::vector<std::uint8_t> as_labels(Span<const float> y) {
  std::vector<std::uint8_t> out;
  for (float v : y) out.push_back(v > 0.5f ? 1 : 0);
  return out;
}

TEST(FM, AdaGradAvx2KernelMatchesScalarUpdate) {
#if PERKREC_FM_HAVE_AVX2_KERNELS
  if (!detail::fm_cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  Rng rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    float v[8], g[8], acc[8], v_ref[8], g_ref[8];
    for (int f = 0; f < 8; ++f) {
      v[f] = v_ref[f] = static_cast<float>(rng.normal(0, 0.5));
      g[f] = g_ref[f] = 1.0f + static_cast<float>(std::fabs(rng.normal(0, 3.0)));
      acc[f] = static_cast<float>(rng.normal(0, 1.0));
    }
    const float gx = static_cast<float>(rng.normal(0, 1.0)), x = trial % 2 ? 1.0f : 0.7f;
    const float reg = 0.01f, lr = 0.05f;
    for (int f = 0; f < 8; ++f) {
      const float grad = gx * (acc[f] - v_ref[f] * x) + reg * v_ref[f];
      g_ref[f] += grad * grad;
      v_ref[f] -= lr * grad / std::sqrt(g_ref[f]);
    }
    detail::fm_adagrad_step8_avx2(v, g, acc, gx, x, reg, lr);
    for (int f = 0; f < 8; ++f) {
      EXPECT_NEAR(g[f], g_ref[f], 1e-5f * g_ref[f]);
      EXPECT_NEAR(v[f], v_ref[f], 1e-6f + 1e-5f * std::fabs(v_ref[f]));
    }
  }
#else
  GTEST_SKIP() << "AVX2 kernels not compiled on this platform";
#endif
}

// Several threads train on FMRecords (one line-aligned record per feature) instead of the
// model's arrays: the same rows through the kernel on either layout must give the same scores
// and the same parameters, bit for bit, with SGD and AdaGrad, compiled (4, 8: the AVX2 AdaGrad
// step) and run-time (5) factor counts.
TEST(FM, InterleavedRecordsTrainExactlyLikeTheModelArrays) {
  const Planted p = planted(400, 6, 10, 3, 21, /*with_values=*/true);
  const std::size_t n_features = static_cast<std::size_t>(p.X.cols);
  auto run = [&](auto kc, int k, bool ada) {
    constexpr int KC = decltype(kc)::value;
    const std::size_t K = static_cast<std::size_t>(k);
    Rng rng(static_cast<std::uint64_t>(k) * 2 + (ada ? 1 : 0));
    std::vector<float> w(n_features), v(n_features * K), gw, gv;
    for (auto& x : w) x = static_cast<float>(rng.normal(0, 0.1));
    for (auto& x : v) x = static_cast<float>(rng.normal(0, 0.3));
    if (ada) {
      gw.assign(w.size(), 1.0f);
      gv.assign(v.size(), 1.0f);
    }
    const std::vector<float> w_start = w, v_start = v;
    float w0_arrays = 0.1f, g0_arrays = 1.0f, w0_records = 0.1f, g0_records = 1.0f;
    detail::FMRecords records;
    records.gather(w, v, gw, gv, K);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(records.base) % 64, 0u);
    ASSERT_EQ(records.width % 16, 0u);
    ASSERT_GE(records.width, ada ? 2 * K + 2 : K + 1);
    detail::FMKernel<KC> arrays{&w0_arrays,
                                w.data(),
                                v.data(),
                                ada ? &g0_arrays : nullptr,
                                gw.data(),
                                gv.data(),
                                p.feature_fields.data(),
                                k,
                                K,
                                false,
                                0.05f,
                                0.0f,
                                1e-3f,
                                1e-3f};
    detail::FMKernel<KC> interleaved = arrays;
    interleaved.w0 = &w0_records;
    if (ada) interleaved.g0 = &g0_records;
    records.attach(interleaved);
    std::vector<float> sum_a(K), sum_b(K);
    for (Index r = 0; r < p.X.rows; ++r) {
      const Index* idx = p.X.indices.data() + p.X.indptr[r];
      const float* val = p.X.data.data() + p.X.indptr[r];
      const Offset n = p.X.indptr[r + 1] - p.X.indptr[r];
      const float s_a = arrays.forward(idx, val, n, sum_a.data());
      const float s_b = interleaved.forward(idx, val, n, sum_b.data());
      ASSERT_EQ(s_a, s_b) << "k " << k << " ada " << ada << " row " << r;
      const float g = 1.0f / (1.0f + std::exp(-s_a)) - p.y[static_cast<std::size_t>(r)];
      arrays.backward(idx, val, n, sum_a.data(), g);
      interleaved.backward(idx, val, n, sum_b.data(), g);
    }
    std::vector<float> w_back(w.size()), v_back(v.size()), gw_back(gw.size()), gv_back(gv.size());
    records.scatter(w_back, v_back, gw_back, gv_back);
    EXPECT_EQ(w0_records, w0_arrays);
    EXPECT_EQ(w_back, w) << "k " << k << " ada " << ada;
    EXPECT_EQ(v_back, v) << "k " << k << " ada " << ada;
    EXPECT_EQ(gw_back, gw) << "k " << k << " ada " << ada;
    EXPECT_EQ(gv_back, gv) << "k " << k << " ada " << ada;
    EXPECT_NE(w, w_start);  // the rows did train the parameters
    EXPECT_NE(v, v_start);
  };
  for (bool ada : {false, true}) {
    run(std::integral_constant<int, 4>(), 4, ada);
    run(std::integral_constant<int, 8>(), 8, ada);
    run(std::integral_constant<int, 0>(), 5, ada);
  }
}

// One thread trains bit-reproducibly; this pins the trained parameters to the values the
// trainer gave before the several-thread layout (FMRecords) and the parallel shuffle were
// added, so a change to the one-thread path shows. Only exact IEEE operations feed the
// result (squared loss, no exp or log; integer-valued data; factors set exactly; AdaGrad with
// 4 factors takes the scalar sqrt path), so the values hold on any x86-64 build without FMA
// contraction.
TEST(FM, OneThreadTrainingMatchesSavedParameters) {
#if defined(__x86_64__) && !defined(__FMA__)
  const int fields = 5, per_field = 7;
  CsrMatrix<float> X;
  X.rows = 3000;
  X.cols = fields * per_field;
  std::vector<float> y;
  Rng rng(5);
  for (Index r = 0; r < X.rows; ++r) {
    for (int f = 0; f < fields; ++f) {
      X.indices.push_back(f * per_field + static_cast<Index>(rng.below(per_field)));
      X.data.push_back(static_cast<float>(1 + (r + f) % 3) * 0.5f);
    }
    X.indptr.push_back(static_cast<Offset>(X.indices.size()));
    y.push_back(static_cast<float>(rng.below(3)) * 0.5f);
  }
  std::vector<std::int32_t> feature_fields;
  for (Index i = 0; i < X.cols; ++i) feature_fields.push_back(i / per_field);
  auto fingerprint = [](const FM& fm) {
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&](const std::vector<float>& values) {
      for (float x : values) {
        std::uint32_t bits;
        std::memcpy(&bits, &x, sizeof bits);
        h = (h ^ bits) * 1099511628211ULL;
      }
    };
    mix({fm.bias()});
    mix(fm.linear());
    mix(fm.factors());
    return h;
  };
  const std::pair<FMParams::Optimizer, std::uint64_t> expected[] = {
      {FMParams::Optimizer::sgd, 0x5f9087194db36c6fULL},
      {FMParams::Optimizer::adagrad, 0x26ecac8bbb5914baULL}};
  for (const auto& [optimizer, hash] : expected) {
    FMParams params;
    params.loss = FMParams::Loss::squared;
    params.optimizer = optimizer;
    params.factors = 4;
    params.init_std = 0.0f;
    params.learning_rate = 0.0078125f;
    params.epochs = 1;
    params.num_threads = 1;
    FM fm(params);
    FMTarget t;
    t.labels = y;
    fm.fit(X.view(), t, feature_fields, fields);
    std::vector<float> w(fm.linear().size()), v(fm.factors().size());
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 5) * 0.0625f - 0.125f;
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(i % 7) * 0.03125f - 0.09375f;
    fm.set_parameters(0.25f, w, v);
    fm.partial_fit(X.view(), t, feature_fields, fields);
    fm.partial_fit(X.view(), t, feature_fields, fields);
    EXPECT_EQ(fingerprint(fm), hash)
        << std::hex << "0x" << fingerprint(fm) << " optimizer " << static_cast<int>(optimizer);
  }
#else
  GTEST_SKIP() << "saved parameters are for x86-64 builds without FMA contraction";
#endif
}

TEST(FM, RecoversPlantedModelCloseToOracle) {
  Planted p = planted(60000, 8, 12, 4, 7);
  const CsrMatrix<float> train = slice(p.X, 0, 50000), test = slice(p.X, 50000, 60000);
  FMParams params;
  params.factors = 4;
  params.epochs = 12;
  params.learning_rate = 0.05f;
  params.num_threads = 2;
  FM fm(params);
  FMTarget t;
  t.labels = Span<const float>(p.y.data(), 50000);
  fm.fit(train.view(), t, p.feature_fields, p.fields);
  std::vector<float> pred(10000);
  fm.predict(test.view(), pred);
  const auto labels = as_labels(Span<const float>(p.y.data() + 50000, 10000));
  const double model_auc = auc(pred, labels);
  const double oracle_auc = auc(Span<const float>(p.truth.data() + 50000, 10000), labels);
  EXPECT_GT(model_auc, oracle_auc - 0.02) << "oracle " << oracle_auc;
  // The linear part alone cannot do this well: the planted signal is mostly interactions.
  FMParams linear_only = params;
  linear_only.factors = 1;
  linear_only.init_std = 0.0f;
  FM lin(linear_only);
  lin.fit(train.view(), t, p.feature_fields, p.fields);
  lin.predict(test.view(), pred);
  EXPECT_LT(auc(pred, labels), model_auc - 0.03);
}

TEST(FM, LossDecreasesOverFirstEpochs) {
  Planted p = planted(20000, 6, 10, 4, 11);
  for (bool ffm : {false, true}) {
    FMParams params;
    params.field_aware = ffm;
    params.factors = 4;
    params.epochs = 1;
    params.init_std = 0.1f;
    params.num_threads = 1;
    params.optimizer = FMParams::Optimizer::adagrad;
    params.learning_rate = 0.05f;
    FM fm(params);
    FMTarget t;
    t.labels = p.y;
    std::vector<double> losses;
    fm.fit(p.X.view(), t, p.feature_fields, p.fields);
    losses.push_back(fm.loss(p.X.view(), t));
    for (int e = 0; e < 3; ++e) {
      fm.partial_fit(p.X.view(), t, p.feature_fields, p.fields);
      losses.push_back(fm.loss(p.X.view(), t));
    }
    ASSERT_EQ(fm.history().size(), 4u);
    for (std::size_t e = 1; e < losses.size(); ++e) {
      EXPECT_LT(losses[e], losses[e - 1]) << "ffm " << ffm << " epoch " << e;
    }
    EXPECT_LT(fm.history()[3].train_loss, fm.history()[0].train_loss);
  }
}

TEST(FM, AnalyticGradientsMatchFiniteDifferences) {
  Planted p = planted(5, 4, 3, 3, 5, /*with_values=*/true);
  for (bool ffm : {false, true}) {
    for (auto loss : {FMParams::Loss::logistic, FMParams::Loss::squared}) {
      FMParams params;
      params.field_aware = ffm;
      params.factors = 3;
      params.epochs = 1;
      params.init_std = 0.5f;
      params.loss = loss;
      params.num_threads = 1;
      FM fm(params);
      FMTarget t;
      std::vector<float> y = p.y;
      t.labels = y;
      fm.fit(p.X.view(), t, p.feature_fields, p.fields);
      const float label = 1.0f;
      const std::vector<double> grad = fm.row_gradient(p.X.view(), 2, label);
      // Row 2 alone, as a one-row matrix, for the loss.
      const CsrMatrix<float> row = slice(p.X, 2, 3);
      std::vector<float> one{label};
      FMTarget rt;
      rt.labels = one;
      const float w0 = fm.bias();
      const std::vector<float> w = fm.linear(), v = fm.factors();
      auto loss_at = [&](std::size_t param, double delta) {
        float b = w0;
        std::vector<float> ww = w, vv = v;
        if (param == 0)
          b += static_cast<float>(delta);
        else if (param <= ww.size())
          ww[param - 1] += static_cast<float>(delta);
        else
          vv[param - 1 - ww.size()] += static_cast<float>(delta);
        FM copy = fm;
        copy.set_parameters(b, ww, vv);
        return copy.loss(row.view(), rt);
      };
      int checked = 0;
      for (std::size_t param = 0; param < grad.size(); ++param) {
        const double h = 1e-2;
        const double numeric = (loss_at(param, h) - loss_at(param, -h)) / (2 * h);
        EXPECT_NEAR(grad[param], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
            << "param " << param << " ffm " << ffm;
        if (grad[param] != 0.0) ++checked;
      }
      EXPECT_GT(checked, 10);
    }
  }
}

TEST(FM, SaveLoadAndConcurrentScoringAndCandidates) {
  Planted p = planted(3000, 5, 6, 4, 21, true);
  for (bool ffm : {false, true}) {
    FMParams params;
    params.field_aware = ffm;
    params.factors = 4;
    params.epochs = 2;
    params.init_std = 0.1f;
    FM fm(params);
    FMTarget t;
    t.labels = p.y;
    fm.fit(p.X.view(), t, p.feature_fields, p.fields);
    fm.set_metadata("{\"encoder\": 1}");
    const FM loaded = FM::from_bytes(fm.to_bytes());
    std::vector<float> a(3000), b(3000);
    fm.score(p.X.view(), a);
    loaded.score(p.X.view(), b);
    EXPECT_EQ(a, b);
    EXPECT_EQ(loaded.metadata(), "{\"encoder\": 1}");
    // Concurrent scoring from 4 threads equals serial scoring.
    std::vector<std::vector<float>> outs(4, std::vector<float>(3000));
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&, i] { loaded.score(p.X.view(), outs[static_cast<std::size_t>(i)]); });
    for (auto& th : threads) th.join();
    for (const auto& o : outs) EXPECT_EQ(o, a);
    // Candidates: base = first 3 fields of rows 0..9, candidates = last 2 fields of rows 0..19.
    CsrMatrix<float> base, cand;
    base.cols = cand.cols = p.X.cols;
    for (Index r = 0; r < 20; ++r) {
      for (Offset e = p.X.indptr[r]; e < p.X.indptr[r + 1]; ++e) {
        const Index i = p.X.indices[static_cast<std::size_t>(e)];
        const float x = p.X.data[static_cast<std::size_t>(e)];
        const bool is_base = p.feature_fields[static_cast<std::size_t>(i)] < 3;
        if (is_base && r < 10) {
          base.indices.push_back(i);
          base.data.push_back(x);
        }
        if (!is_base) {
          cand.indices.push_back(i);
          cand.data.push_back(x);
        }
      }
      if (r < 10) base.indptr.push_back(static_cast<Offset>(base.indices.size()));
      cand.indptr.push_back(static_cast<Offset>(cand.indices.size()));
    }
    base.rows = 10;
    cand.rows = 20;
    std::vector<float> grid(200);
    fm.score_candidates(base.view(), cand.view(), grid);
    for (Index r = 0; r < 10; ++r) {
      for (Index c = 0; c < 20; ++c) {
        CsrMatrix<float> joint;
        joint.rows = 1;
        joint.cols = p.X.cols;
        for (Offset e = base.indptr[r]; e < base.indptr[r + 1]; ++e) {
          joint.indices.push_back(base.indices[e]);
          joint.data.push_back(base.data[e]);
        }
        for (Offset e = cand.indptr[c]; e < cand.indptr[c + 1]; ++e) {
          joint.indices.push_back(cand.indices[e]);
          joint.data.push_back(cand.data[e]);
        }
        joint.indptr.push_back(static_cast<Offset>(joint.indices.size()));
        std::vector<float> s(1);
        fm.score(joint.view(), s);
        EXPECT_NEAR(grid[static_cast<std::size_t>(r * 20 + c)], s[0], 1e-4) << "ffm " << ffm;
      }
    }
  }
}

/// Two fits of the same data with `params` give bit-identical models.
void expect_identical_fits(const FMParams& params, std::uint64_t data_seed) {
  Planted p = planted(4000, 5, 6, 4, data_seed);
  FM a(params), b(params);
  FMTarget t;
  t.labels = p.y;
  a.fit(p.X.view(), t, p.feature_fields, p.fields);
  b.fit(p.X.view(), t, p.feature_fields, p.fields);
  EXPECT_EQ(a.factors(), b.factors());
  EXPECT_EQ(a.linear(), b.linear());
  EXPECT_EQ(a.bias(), b.bias());
}

TEST(FM, ReproducibleWithOneThread) {
  FMParams params;
  params.num_threads = 1;
  params.epochs = 3;
  expect_identical_fits(params, 3);
}

TEST(FM, DefaultParamsAreReproducible) {
  const FMParams defaults;
  EXPECT_EQ(defaults.num_threads, 1);
  EXPECT_EQ(defaults.seed, 42u);
  expect_identical_fits(defaults, 4);
}

TEST(FM, BadInputRaisesInputErrorAndLeavesModel) {
  Planted p = planted(100, 3, 4, 2, 1);
  FM fm;
  FMTarget t;
  t.labels = p.y;
  fm.fit(p.X.view(), t, p.feature_fields, p.fields);
  const std::vector<float> before = fm.factors();
  CsrMatrix<float> bad = p.X;
  bad.data[3] = std::nanf("");
  PERKREC_EXPECT_THROW_MSG(fm.fit(bad.view(), t, p.feature_fields, p.fields), InputError, "finite");
  CsrMatrix<float> out_of_range = p.X;
  out_of_range.indices[0] = 9999;
  PERKREC_EXPECT_THROW_MSG(fm.fit(out_of_range.view(), t, p.feature_fields, p.fields), InputError,
                           "9999");
  std::vector<std::int32_t> fields = p.feature_fields;
  fields[0] = 7;  // unknown field
  PERKREC_EXPECT_THROW_MSG(fm.fit(p.X.view(), t, fields, p.fields), InputError,
                           "field of feature 0");
  std::vector<float> short_y(p.y.begin(), p.y.end() - 1);
  FMTarget ts;
  ts.labels = short_y;
  PERKREC_EXPECT_THROW_MSG(fm.fit(p.X.view(), ts, p.feature_fields, p.fields), InputError,
                           "labels");
  std::vector<float> two(p.y);
  two[0] = 2.0f;
  FMTarget t2;
  t2.labels = two;
  PERKREC_EXPECT_THROW_MSG(fm.fit(p.X.view(), t2, p.feature_fields, p.fields), InputError,
                           "0 or 1");
  std::vector<float> out(5);
  PERKREC_EXPECT_THROW_MSG(fm.score(p.X.view(), out), InputError, "out has 5");
  EXPECT_EQ(fm.factors(), before);
  FMParams bad_params;
  bad_params.factors = -1;
  EXPECT_THROW(FM{bad_params}, ConfigError);
  EXPECT_THROW(FMParams::from_json(Json{{"factorz", 3}}), ConfigError);
}

// Gradient of (1/n) sum_i loss_i + reg/2 |w|^2 (bias unpenalized) at the model's parameters.
std::vector<double> regularized_gradient(const FM& fm, const Planted& p, double reg,
                                         bool logistic) {
  std::vector<double> g(1 + static_cast<std::size_t>(p.X.cols), 0.0);
  const double n = static_cast<double>(p.X.rows);
  for (Index r = 0; r < p.X.rows; ++r) {
    double s = fm.bias();
    for (Offset e = p.X.indptr[r]; e < p.X.indptr[r + 1]; ++e) {
      s += static_cast<double>(p.X.data[static_cast<std::size_t>(e)]) *
           fm.linear()[static_cast<std::size_t>(p.X.indices[static_cast<std::size_t>(e)])];
    }
    const double y = p.y[static_cast<std::size_t>(r)];
    const double d = (logistic ? 1.0 / (1.0 + std::exp(-s)) : s) - y;
    g[0] += d / n;
    for (Offset e = p.X.indptr[r]; e < p.X.indptr[r + 1]; ++e) {
      g[1 + static_cast<std::size_t>(p.X.indices[static_cast<std::size_t>(e)])] +=
          d * p.X.data[static_cast<std::size_t>(e)] / n;
    }
  }
  for (std::size_t j = 0; j < fm.linear().size(); ++j) g[1 + j] += reg * fm.linear()[j];
  return g;
}

TEST(FM, FactorsZeroIsExactLogisticRegression) {
  Planted p = planted(5000, 4, 5, 1, 33, true);
  for (bool logistic : {true, false}) {
    FMParams params;
    params.factors = 0;
    params.reg_linear = 1e-3f;
    params.loss = logistic ? FMParams::Loss::logistic : FMParams::Loss::squared;
    params.num_threads = 1;
    FM fm(params);
    FMTarget t;
    t.labels = p.y;
    fm.fit(p.X.view(), t, p.feature_fields, p.fields);
    EXPECT_TRUE(fm.factors().empty());
    EXPECT_LE(fm.history().size(), static_cast<std::size_t>(FM::kExactMaxIterations));
    EXPECT_GE(fm.history().size(), 1u);
    // First-order optimality up to the float32 storage of the parameters.
    const std::vector<double> g = regularized_gradient(fm, p, 1e-3, logistic);
    double norm = 0;
    for (double x : g) norm += x * x;
    EXPECT_LT(std::sqrt(norm), 1e-5) << "logistic " << logistic;
    // Bit-identical for any thread count; FFM with factors = 0 is the same model.
    for (int threads : {2, 3, 0}) {
      FMParams q = params;
      q.num_threads = threads;
      FM other(q);
      other.fit(p.X.view(), t, p.feature_fields, p.fields);
      EXPECT_EQ(other.linear(), fm.linear()) << threads;
      EXPECT_EQ(other.bias(), fm.bias()) << threads;
    }
    FMParams q = params;
    q.field_aware = true;
    FM ffm(q);
    ffm.fit(p.X.view(), t, p.feature_fields, p.fields);
    EXPECT_EQ(ffm.linear(), fm.linear());
    // Save / load round trip and scoring.
    const FM loaded = FM::from_bytes(fm.to_bytes());
    std::vector<float> a(static_cast<std::size_t>(p.X.rows)), b(a.size());
    fm.predict(p.X.view(), a);
    loaded.predict(p.X.view(), b);
    EXPECT_EQ(a, b);
    // partial_fit on the same rows starts at the optimum and stays there.
    FM again = loaded;
    again.partial_fit(p.X.view(), t, p.feature_fields, p.fields);
    for (std::size_t j = 0; j < fm.linear().size(); ++j) {
      EXPECT_NEAR(again.linear()[j], fm.linear()[j], 1e-5);
    }
  }
  // Weights: a row of weight 2 equals the row twice.
  FMParams params;
  params.factors = 0;
  params.reg_linear = 1e-2f;
  CsrMatrix<float> twice = p.X;
  std::vector<float> y2 = p.y;
  for (Offset e = p.X.indptr[0]; e < p.X.indptr[1]; ++e) {
    twice.indices.push_back(p.X.indices[static_cast<std::size_t>(e)]);
    twice.data.push_back(p.X.data[static_cast<std::size_t>(e)]);
  }
  twice.indptr.push_back(static_cast<Offset>(twice.indices.size()));
  twice.rows += 1;
  y2.push_back(p.y[0]);
  std::vector<float> weights(p.y.size(), 1.0f);
  weights[0] = 2.0f;
  FM weighted(params), duplicated(params);
  FMTarget tw;
  tw.labels = p.y;
  tw.sample_weights = weights;
  FMTarget td;
  td.labels = y2;
  weighted.fit(p.X.view(), tw, p.feature_fields, p.fields);
  duplicated.fit(twice.view(), td, p.feature_fields, p.fields);
  for (std::size_t j = 0; j < weighted.linear().size(); ++j) {
    EXPECT_NEAR(weighted.linear()[j], duplicated.linear()[j], 1e-5);
  }
  // Early stopping has nothing to stop.
  FMParams es = params;
  es.early_stopping_rounds = 2;
  PERKREC_EXPECT_THROW_MSG(FM{es}, ConfigError, "early_stopping_rounds");
  EXPECT_NO_THROW(FMParams::from_json(Json{{"factors", 0}}));
}

TEST(FM, FactorsZeroWithBprTrainsALinearRanker) {
  Planted p = planted(2000, 4, 5, 1, 5);
  FMParams params;
  params.factors = 0;
  params.loss = FMParams::Loss::bpr;
  params.num_threads = 1;
  FM fm(params);
  std::vector<Index> groups(p.y.size());
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<Index>(i / 10);
  FMTarget t;
  t.labels = p.y;
  t.groups = groups;
  fm.fit(p.X.view(), t, p.feature_fields, p.fields);
  std::vector<float> s(static_cast<std::size_t>(p.X.rows));
  fm.score(p.X.view(), s);
  for (float x : s) EXPECT_TRUE(std::isfinite(x));
}

TEST(FM, DivergingLearningRateRaisesAndKeepsLastFiniteModel) {
  Planted p = planted(2000, 5, 6, 4, 9);
  FMParams params;
  params.loss = FMParams::Loss::squared;
  params.optimizer = FMParams::Optimizer::sgd;
  params.learning_rate = 50.0f;
  params.init_std = 1.0f;
  params.epochs = 5;
  params.num_threads = 1;
  FM fm(params);
  std::vector<float> y(p.y.size());
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = 100.0f * p.y[i];
  FMTarget t;
  t.labels = y;
  EXPECT_THROW(fm.fit(p.X.view(), t, p.feature_fields, p.fields), DivergenceError);
  ASSERT_TRUE(fm.fitted());
  for (float v : fm.factors()) ASSERT_TRUE(std::isfinite(v));
  for (float v : fm.linear()) ASSERT_TRUE(std::isfinite(v));
  std::vector<float> s(p.X.rows);
  fm.score(p.X.view(), s);
}

TEST(FM, BprRanksWithinGroupsAndPartialFitContinues) {
  Planted p = planted(8000, 5, 8, 4, 13);
  std::vector<Index> groups(p.y.size());
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<Index>(i / 20);
  FMParams params;
  params.loss = FMParams::Loss::bpr;
  params.factors = 4;
  params.epochs = 6;
  params.num_threads = 1;
  FM fm(params);
  FMTarget t;
  t.labels = p.y;
  t.groups = groups;
  fm.fit(p.X.view(), t, p.feature_fields, p.fields);
  std::vector<float> s(p.y.size());
  fm.score(p.X.view(), s);
  EXPECT_GT(auc(s, as_labels(p.y)), 0.7);
  const double before = fm.loss(p.X.view(), t);
  fm.partial_fit(p.X.view(), t, p.feature_fields, p.fields);
  EXPECT_EQ(fm.history().size(), 12u);
  EXPECT_LT(fm.loss(p.X.view(), t), before + 1e-6);
}

TEST(FM, EarlyStoppingKeepsBestValidationEpoch) {
  Planted p = planted(3000, 6, 30, 4, 17);
  const CsrMatrix<float> train = slice(p.X, 0, 1500), val = slice(p.X, 1500, 3000);
  FMParams params;
  params.field_aware = true;
  params.factors = 8;
  params.learning_rate = 0.2f;
  params.reg_factors = 0;
  params.reg_linear = 0;
  params.epochs = 30;
  params.early_stopping_rounds = 2;
  params.num_threads = 1;
  FM fm(params);
  FMTarget t, vt;
  t.labels = Span<const float>(p.y.data(), 1500);
  vt.labels = Span<const float>(p.y.data() + 1500, 1500);
  const CsrView<float> val_view = val.view();
  fm.fit(train.view(), t, p.feature_fields, p.fields, &val_view, &vt);
  ASSERT_LT(fm.history().size(), 30u);  // it stopped
  double best = 1e9;
  for (const auto& e : fm.history()) best = std::min(best, e.validation_loss);
  EXPECT_NEAR(fm.loss(val.view(), vt), best, 1e-9);
}

// FM::train's stages (issue 17): the BPR partner index and the early-stopping bookkeeping.
// (The epoch stage's contract, one pass lowers the training loss, is
// FM.LossDecreasesOverFirstEpochs above, one partial_fit epoch at a time.)
TEST(FMStages, BprPartnersAreTheLowerLabelledRowsOfTheSameGroup) {
  const std::vector<float> labels = {1, 0, 2, 0, 0, 3, 1, 1};
  const std::vector<Index> groups = {0, 0, 0, 1, 1, 2, 2, 2};
  FMTarget t;
  t.labels = labels;
  t.groups = groups;
  const detail::FMPartners pairs = detail::fm_bpr_partners(t, 8);
  ASSERT_EQ(pairs.group_rows.size(), 8u);
  for (Offset r = 0; r < 8; ++r) {
    std::vector<Offset> got, expected;
    for (Offset i = 0; i < pairs.lower_count[r]; ++i)
      got.push_back(pairs.group_rows[pairs.lower_begin[r] + i]);
    for (Offset q = 0; q < 8; ++q) {
      if (groups[q] == groups[r] && labels[q] < labels[r]) expected.push_back(q);
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected) << "row " << r;
  }
  EXPECT_EQ(pairs.lower_count[2], 2);  // label 2 beats rows 0 and 1
  EXPECT_EQ(pairs.lower_count[3], 0);  // a tie is no pair
  EXPECT_EQ(pairs.lower_count[5], 2);
}

TEST(FMStages, EarlyStoppingStopsAfterRoundsWithoutANewBest) {
  using Step = detail::FMEarlyStopping::Step;
  detail::FMEarlyStopping s;
  s.rounds = 2;
  EXPECT_EQ(s.observe(1.0), Step::new_best);
  EXPECT_EQ(s.observe(0.5), Step::new_best);
  EXPECT_EQ(s.observe(0.5), Step::go_on);  // equal is not better
  EXPECT_EQ(s.observe(0.4), Step::new_best);
  EXPECT_EQ(s.observe(0.7), Step::go_on);
  EXPECT_EQ(s.observe(0.6), Step::stop);
  EXPECT_EQ(s.best_loss, 0.4);
  detail::FMEarlyStopping never;  // rounds = 0: tracks the best, never stops
  EXPECT_EQ(never.observe(1.0), Step::new_best);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(never.observe(2.0), Step::go_on);
}

}  // namespace
}  // namespace perkrec
