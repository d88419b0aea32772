#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "test_util.hpp"

namespace perkrec {
namespace {

// One-hot rows: `fields` fields of `per_field` values, one active value per field. The truth's
// logit is bias + the values' linear weights (+ rank-`k` pairwise interactions of scale
// `interaction` when k > 0).
struct Planted {
  CsrMatrix<float> X;
  std::vector<float> y;
  std::vector<double> logit;
  std::vector<double> weights;  // planted linear weights
  std::vector<std::int32_t> feature_fields;
  std::int32_t fields = 0;
};

Planted planted(Index rows, int fields, int per_field, int k, double interaction,
                std::uint64_t seed) {
  Rng rng(seed);
  const Index nf = fields * per_field;
  std::vector<double> w(static_cast<std::size_t>(nf)), v(static_cast<std::size_t>(nf) * k);
  for (auto& x : w) x = rng.normal(0, 0.6);
  for (auto& x : v) x = rng.normal(0, interaction);
  Planted p;
  p.weights = w;
  p.fields = fields;
  p.X.rows = rows;
  p.X.cols = nf;
  for (Index f = 0; f < nf; ++f) p.feature_fields.push_back(f / per_field);
  for (Index r = 0; r < rows; ++r) {
    std::vector<Index> active;
    for (int f = 0; f < fields; ++f) {
      active.push_back(f * per_field +
                       static_cast<Index>(rng.below(static_cast<std::uint32_t>(per_field))));
    }
    double s = -1.0;
    for (std::size_t a = 0; a < active.size(); ++a) {
      s += w[static_cast<std::size_t>(active[a])];
      for (std::size_t b = a + 1; b < active.size(); ++b) {
        for (int q = 0; q < k; ++q) {
          s += v[static_cast<std::size_t>(active[a]) * k + q] *
               v[static_cast<std::size_t>(active[b]) * k + q];
        }
      }
      p.X.indices.push_back(active[a]);
      p.X.data.push_back(1.0f);
    }
    p.X.indptr.push_back(static_cast<Offset>(p.X.indices.size()));
    p.logit.push_back(s);
    p.y.push_back(rng.bernoulli(1.0 / (1.0 + std::exp(-s))) ? 1.0f : 0.0f);
  }
  return p;
}

FMTarget target_of(const Planted& p) {
  FMTarget t;
  t.labels = Span<const float>(p.y.data(), p.y.size());
  return t;
}

std::vector<float> predict(const FM& fm, const CsrMatrix<float>& X) {
  std::vector<float> out(static_cast<std::size_t>(X.rows));
  fm.predict(X.view(), out);
  return out;
}

// Mean log-loss of probabilities against 0/1 labels.
double log_loss(const std::vector<float>& p, const std::vector<float>& y) {
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double q = std::clamp(static_cast<double>(p[i]), 1e-7, 1 - 1e-7);
    s -= y[i] > 0.5f ? std::log(q) : std::log(1 - q);
  }
  return s / static_cast<double>(p.size());
}

TEST(FMCV, FoldsAreDeterministicStratifiedAndDependOnTheSeed) {
  std::vector<float> y(1003, 0.0f);
  for (std::size_t i = 0; i < y.size(); i += 7) y[i] = 1.0f;
  const auto a = FMCV::fold_of(Span<const float>(y.data(), y.size()), 5, 7);
  const auto b = FMCV::fold_of(Span<const float>(y.data(), y.size()), 5, 7);
  const auto c = FMCV::fold_of(Span<const float>(y.data(), y.size()), 5, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (float label : {0.0f, 1.0f}) {
    std::vector<int> count(5, 0);
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_GE(a[i], 0);
      ASSERT_LT(a[i], 5);
      if (y[i] == label) ++count[static_cast<std::size_t>(a[i])];
    }
    const auto [lo, hi] = std::minmax_element(count.begin(), count.end());
    EXPECT_LE(*hi - *lo, 1) << "label " << label;
  }
}

TEST(FMCV, GroupFoldsKeepEveryGroupInOneFoldAndBalanceThePositives) {
  // 300 groups of 1 to 9 rows; a group's rows are positive with group-dependent frequency.
  std::vector<float> y;
  std::vector<Index> g;
  for (Index group = 0; group < 300; ++group) {
    const int size = 1 + static_cast<int>((group * 7) % 9);
    for (int r = 0; r < size; ++r) {
      g.push_back(1000 - group * 3);  // ids need not be compact or sorted
      y.push_back((group % 5 == 0 && r % 2 == 0) ? 1.0f : 0.0f);
    }
  }
  const Span<const float> ys(y.data(), y.size());
  const Span<const Index> gs(g.data(), g.size());
  const auto a = FMCV::fold_of(ys, 5, 7, gs);
  EXPECT_EQ(a, FMCV::fold_of(ys, 5, 7, gs));
  EXPECT_NE(a, FMCV::fold_of(ys, 5, 8, gs));
  std::map<Index, std::set<std::int32_t>> folds_of_group;
  std::vector<int> positives(5, 0), rows(5, 0);
  int total_positives = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    ASSERT_GE(a[i], 0);
    ASSERT_LT(a[i], 5);
    folds_of_group[g[i]].insert(a[i]);
    positives[static_cast<std::size_t>(a[i])] += y[i] == 1.0f ? 1 : 0;
    total_positives += y[i] == 1.0f ? 1 : 0;
    ++rows[static_cast<std::size_t>(a[i])];
  }
  for (const auto& [group, folds] : folds_of_group) EXPECT_EQ(folds.size(), 1u) << group;
  // Greedy placement: positive counts within one group's largest count (5) of each other.
  const auto [plo, phi] = std::minmax_element(positives.begin(), positives.end());
  EXPECT_LE(*phi - *plo, 5);
  EXPECT_GT(*plo, 0);
  const auto [rlo, rhi] = std::minmax_element(rows.begin(), rows.end());
  EXPECT_LE(*rhi - *rlo, 9);
  // Empty groups: the row-stratified folds.
  EXPECT_EQ(FMCV::fold_of(ys, 5, 7, Span<const Index>()), FMCV::fold_of(ys, 5, 7));
  // A negative id or the wrong size is an InputError.
  std::vector<Index> bad = g;
  bad[17] = -1;
  EXPECT_THROW(FMCV::fold_of(ys, 5, 7, Span<const Index>(bad.data(), bad.size())), InputError);
  EXPECT_THROW(FMCV::fold_of(ys, 5, 7, Span<const Index>(g.data(), g.size() - 1)), InputError);
}

TEST(FMCV, GroupsThatCannotGiveEveryFoldBothLabelsAreAnInputErrorBeforeAnyChange) {
  const Planted p = planted(600, 4, 8, 0, 0.0, 5);
  std::vector<Index> groups(600);
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<Index>(i % 3);
  FMCVParams params;
  params.factors = 0;
  FMCV cv(params);
  FMTarget t = target_of(p);
  t.groups = Span<const Index>(groups.data(), groups.size());  // 3 groups for 5 folds
  EXPECT_THROW(cv.fit(p.X.view(), t, p.feature_fields, p.fields), InputError);
  EXPECT_FALSE(cv.fitted());
}

TEST(FMCV, GroupFoldsStopAGroupIdFromLookingPredictive) {
  // 300 groups of 10 rows; each group's rate is its own (0.05 or 0.6) and only its id feature
  // (one per group) tells it. Row folds see every group in training, so the id features look
  // predictive: a weak penalty and a low CV loss. Group folds score groups never seen, where
  // the ids carry nothing: a stronger penalty and a higher (honest) CV loss.
  Rng rng(3);
  CsrMatrix<float> X;
  X.cols = 300;
  std::vector<float> y;
  std::vector<Index> groups;
  for (Index group = 0; group < 300; ++group) {
    const double rate = rng.bernoulli(0.5) ? 0.6 : 0.05;
    for (int r = 0; r < 10; ++r) {
      X.indices.push_back(group);
      X.data.push_back(1.0f);
      X.indptr.push_back(static_cast<Offset>(X.indices.size()));
      ++X.rows;
      y.push_back(rng.bernoulli(rate) ? 1.0f : 0.0f);
      groups.push_back(group);
    }
  }
  const std::vector<std::int32_t> fields(300, 0);
  FMCVParams params;
  params.factors = 0;
  FMCV plain(params), grouped(params);
  FMTarget t;
  t.labels = Span<const float>(y.data(), y.size());
  plain.fit(X.view(), t, fields, 1);
  t.groups = Span<const Index>(groups.data(), groups.size());
  grouped.fit(X.view(), t, fields, 1);
  EXPECT_GT(grouped.report().reg_linear, 10 * plain.report().reg_linear);
  EXPECT_GT(grouped.report().linear_loss, plain.report().linear_loss + 0.02);
}

TEST(FMCV, LinearTruthSelectsTheLogisticRegressionAtAnInteriorPenalty) {
  const Planted p = planted(3000, 5, 12, 0, 0.0, 11);
  FMCVParams params;
  params.factors = 4;
  FMCV cv(params);
  cv.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  const FMCVReport& r = cv.report();
  EXPECT_FALSE(r.factorized);
  EXPECT_EQ(cv.model().params().factors, 0);
  ASSERT_EQ(r.path_loss.size(), params.reg_linear_path.size());
  // The path's minimum is inside it: the strongest penalty underfits, the weakest overfits.
  const auto best = std::min_element(r.path_loss.begin(), r.path_loss.end());
  EXPECT_GT(r.path_loss.front(), *best + 0.01);
  EXPECT_GT(r.path_loss.back(), *best);
  EXPECT_EQ(r.reg_linear, r.reg_linear_path[static_cast<std::size_t>(best - r.path_loss.begin())]);
  // The model is the exact logistic regression at the chosen penalty on all rows.
  FMParams lp;
  lp.factors = 0;
  lp.reg_bias = 0.0f;
  lp.reg_linear = static_cast<float>(r.reg_linear);
  FM direct(lp);
  direct.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  EXPECT_EQ(cv.model().linear(), direct.linear());
  EXPECT_EQ(cv.model().bias(), direct.bias());
  // It recovers the planted weights up to a shift within each field.
  std::vector<double> fitted, truth;
  for (int f = 0; f < p.fields; ++f) {
    double mf = 0, mt = 0;
    for (int j = 0; j < 12; ++j) {
      mf += cv.model().linear()[static_cast<std::size_t>(f * 12 + j)] / 12.0;
      mt += p.weights[static_cast<std::size_t>(f * 12 + j)] / 12.0;
    }
    for (int j = 0; j < 12; ++j) {
      fitted.push_back(cv.model().linear()[static_cast<std::size_t>(f * 12 + j)] - mf);
      truth.push_back(p.weights[static_cast<std::size_t>(f * 12 + j)] - mt);
    }
  }
  EXPECT_GT(testing::correlation(fitted, truth), 0.9);
}

TEST(FMCV, InteractionTruthSelectsTheFMAndBeatsTheLogisticRegressionOnNewRows) {
  const Planted p = planted(8000, 4, 10, 2, 0.9, 12);
  // Train on the first 6000 rows, test on the last 2000 (the same planted truth).
  Planted train = p, test = p;
  train.X = CsrMatrix<float>{};
  train.X.cols = p.X.cols;
  test.X = CsrMatrix<float>{};
  test.X.cols = p.X.cols;
  train.y.clear();
  test.y.clear();
  for (Index r = 0; r < p.X.rows; ++r) {
    Planted& dst = r < 6000 ? train : test;
    for (Offset e = p.X.indptr[r]; e < p.X.indptr[r + 1]; ++e) {
      dst.X.indices.push_back(p.X.indices[static_cast<std::size_t>(e)]);
      dst.X.data.push_back(1.0f);
    }
    dst.X.indptr.push_back(static_cast<Offset>(dst.X.indices.size()));
    ++dst.X.rows;
    dst.y.push_back(p.y[static_cast<std::size_t>(r)]);
  }
  FMCVParams params;
  params.factors = 4;
  params.seeds = 2;
  FMCV cv(params);
  cv.fit(train.X.view(), target_of(train), train.feature_fields, train.fields);
  const FMCVReport& r = cv.report();
  ASSERT_TRUE(r.factorized);
  EXPECT_LT(r.loss, r.linear_loss - 0.005);
  EXPECT_GT(r.epochs, 0);
  EXPECT_EQ(r.seeds, 2);
  EXPECT_EQ(cv.model().params().factors, 8);  // two seeds of 4 factors, averaged
  FMParams lp;
  lp.factors = 0;
  lp.reg_linear = static_cast<float>(r.reg_linear);
  lp.reg_bias = 0.0f;
  FM lr(lp);
  lr.fit(train.X.view(), target_of(train), train.feature_fields, train.fields);
  EXPECT_LT(log_loss(predict(cv.model(), test.X), test.y),
            log_loss(predict(lr, test.X), test.y) - 0.005);
}

TEST(FMCV, ResultsDoNotDependOnTheThreadCount) {
  const Planted p = planted(3000, 4, 10, 2, 0.9, 13);
  FMCVParams params;
  params.factors = 4;
  params.max_epochs = 6;
  params.reg_factors_grid = {1e-3};
  params.num_threads = 1;
  FMCV one(params);
  one.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  params.num_threads = 2;
  FMCV two(params);
  two.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  EXPECT_EQ(one.report().path_loss, two.report().path_loss);
  EXPECT_EQ(one.report().factors_loss, two.report().factors_loss);
  EXPECT_EQ(one.model().linear(), two.model().linear());
  EXPECT_EQ(one.model().factors(), two.model().factors());
  EXPECT_EQ(one.model().bias(), two.model().bias());
}

TEST(FMCV, SavedModelPredictsTheSameAndCarriesTheSelection) {
  const Planted p = planted(2000, 4, 8, 2, 0.9, 14);
  FMCVParams params;
  params.factors = 4;
  params.max_epochs = 5;
  FMCV cv(params);
  cv.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  const FM loaded = FM::from_bytes(cv.model().to_bytes());
  EXPECT_EQ(predict(loaded, p.X), predict(cv.model(), p.X));
  const Json meta = Json::parse(loaded.metadata());
  EXPECT_EQ(meta.at("selection").at("report").at("factorized").get<bool>(), cv.report().factorized);
  EXPECT_EQ(meta.at("selection").at("params").at("factors").get<int>(), 4);
  EXPECT_EQ(FMCVParams::from_json(meta.at("selection").at("params")).folds, params.folds);
}

TEST(FMCV, BadInputIsATypedErrorAndLeavesTheSelectionAsItWas) {
  const Planted p = planted(500, 3, 5, 0, 0.0, 15);
  FMCVParams params;
  params.factors = 0;
  FMCV cv(params);
  PERKREC_EXPECT_THROW_MSG(cv.model(), InputError, "not fitted");
  cv.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  const std::vector<float> before = cv.model().linear();

  std::vector<float> bad = p.y;
  bad[3] = 2.0f;
  FMTarget t;
  t.labels = Span<const float>(bad.data(), bad.size());
  PERKREC_EXPECT_THROW_MSG(cv.fit(p.X.view(), t, p.feature_fields, p.fields), InputError,
                           "label at position 3 must be 0 or 1 (got 2)");
  std::vector<float> few(p.y.size(), 0.0f);
  few[0] = few[1] = 1.0f;
  t.labels = Span<const float>(few.data(), few.size());
  PERKREC_EXPECT_THROW_MSG(cv.fit(p.X.view(), t, p.feature_fields, p.fields), InputError,
                           "at least folds = 5 rows (got 2 positive");
  std::vector<std::int32_t> fields = p.feature_fields;
  fields.pop_back();
  PERKREC_EXPECT_THROW_MSG(cv.fit(p.X.view(), target_of(p), fields, p.fields), InputError,
                           "feature_fields has");
  EXPECT_EQ(cv.model().linear(), before);

  FMCVParams empty_path;
  empty_path.reg_linear_path.clear();
  PERKREC_EXPECT_THROW_MSG(FMCV{empty_path}, ConfigError, "reg_linear_path must not be empty");
  FMCVParams negative;
  negative.reg_linear_path = {1e-3, -1.0};
  PERKREC_EXPECT_THROW_MSG(FMCV{negative}, ConfigError, "reg_linear_path[1] must be finite");
  FMCVParams too_many;
  too_many.factors = 64;
  too_many.seeds = 17;
  PERKREC_EXPECT_THROW_MSG(FMCV{too_many}, ConfigError, "seeds x factors must be <= 1024");
  FMCVParams one_fold;
  one_fold.folds = 1;
  PERKREC_EXPECT_THROW_MSG(FMCV{one_fold}, ConfigError, "folds");
  PERKREC_EXPECT_THROW_MSG(FMCVParams::from_json(Json::parse(R"({"fold": 3})")), ConfigError,
                           "fold");
}

TEST(FM, AverageScoresAreTheMeanOfTheModelsScores) {
  const Planted p = planted(1500, 4, 8, 2, 0.9, 16);
  for (bool field_aware : {false, true}) {
    std::vector<FM> models;
    for (std::uint64_t seed : {1, 2, 3}) {
      FMParams fp;
      fp.factors = 4;
      fp.field_aware = field_aware;
      fp.epochs = 3;
      fp.init_std = 0.1f;
      fp.seed = seed;
      FM m(fp);
      m.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
      models.push_back(std::move(m));
    }
    const FM avg = FM::average(models);
    EXPECT_EQ(avg.params().factors, 12);
    std::vector<float> s(static_cast<std::size_t>(p.X.rows)), mean(s.size(), 0.0f);
    for (const FM& m : models) {
      m.score(p.X.view(), s);
      for (std::size_t i = 0; i < s.size(); ++i) mean[i] += s[i] / 3.0f;
    }
    avg.score(p.X.view(), s);
    for (std::size_t i = 0; i < s.size(); ++i) ASSERT_NEAR(s[i], mean[i], 1e-4) << i;
  }
  FMParams other;
  other.factors = 2;
  FM small(other);
  small.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  FMParams fp;
  fp.factors = 4;
  FM m(fp);
  m.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  PERKREC_EXPECT_THROW_MSG(FM::average({m, small}), InputError, "model 1 differs");
  PERKREC_EXPECT_THROW_MSG(FM::average({}), InputError, "no models");
}

TEST(FM, FitFromStartsAtTheLinearModel) {
  const Planted p = planted(1500, 4, 8, 0, 0.0, 17);
  FMParams lp;
  lp.factors = 0;
  lp.reg_linear = 1e-3f;
  FM lr(lp);
  lr.fit(p.X.view(), target_of(p), p.feature_fields, p.fields);
  FMParams fp;
  fp.factors = 4;
  fp.epochs = 1;
  fp.learning_rate = 1e-6f;  // so small that one epoch stays at the start
  FM fm(fp);
  fm.fit_from(lr, p.X.view(), target_of(p), p.feature_fields, p.fields);
  for (std::size_t j = 0; j < lr.linear().size(); ++j) {
    ASSERT_NEAR(fm.linear()[j], lr.linear()[j], 1e-3) << j;
  }
  EXPECT_NEAR(fm.bias(), lr.bias(), 1e-3);
  FM unfitted(lp);
  PERKREC_EXPECT_THROW_MSG(
      fm.fit_from(unfitted, p.X.view(), target_of(p), p.feature_fields, p.fields), InputError,
      "start model is not fitted");
}

}  // namespace
}  // namespace perkrec
