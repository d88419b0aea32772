// CLVModel: what a member is worth — purchase summaries from the event log, a buy-till-you-die
// purchase model (BG/NBD, MBG/NBD or Pareto/NBD), a spend model (Gamma-Gamma), and per member the
// probability of being alive, expected purchases and order value, lifetime value with an
// interval, and a lifecycle stage.
//
// Summaries (summarize_purchases). From the log's `ordered` events strictly before cut_time,
// per member with at least one such order. Orders are grouped into purchase occasions: all
// orders on one UTC day are one occasion (`occasion` = day, as the literature does for CDNOW),
// or all orders in one 7-day block counted from the member's first order day (`occasion` =
// week). Times are whole UTC days on a grid, measured in `time_unit`s (day = 1, week = 7 days):
//   x        repeat occasions (occasions after the first)
//   t_x      time from the first order to the first order of the last occasion
//   T        time from the first occasion to the last day before the cut (the day that holds
//            cut_time - 1 s), so an order on the cut's last day has t_x = T
//   monetary mean value of the repeat occasions (an occasion's value is the sum of its orders'
//            order_amount); 0 when x = 0
// With cut_time at midnight and time_unit = week, occasion = day this is exactly the CDNOW
// summary of Fader, Hardie and Lee (x, t_x, T in weeks, zbar). Parallel over members;
// O(events before the cut).
//
// Fit. The purchase model (`model`: bgnbd, mbgnbd, paretonbd or bgbb; models/purchase.hpp) on
// (x, t_x, T) of every summarized member (BG/BB: one purchase opportunity per time_unit, so it
// needs occasion = time_unit; n = floor(T) opportunities, the last one possibly partial) and
// Gamma-Gamma on (x, monetary) of the members with x > 0 and monetary > 0, both by the robust
// maximum-likelihood fitter of models/purchase.hpp (boundary solutions reported, optional
// penalizer, standard errors from the Hessian). Without two such members the spend model is not
// fitted and the expected order value is the member's own mean order value (all orders before the
// cut) — still finite.
//
// Predictions (predict(horizon, discount_rate, margin)), horizon in time_units:
//   p_alive               P(alive at the cut | x, t_x, T)
//   expected_purchases    E[occasions in (cut, cut + horizon]]
//   expected_order_value  Gamma-Gamma posterior mean of the member's order value
//   clv                   margin x expected_order_value x sum_k E[occasions in unit k] /
//                         (1 + discount_rate)^k over the units k = 1..ceil(horizon) (the last one
//                         partial); with discount_rate = 0 and margin = 1 it is the expected spend
//   clv_lower, clv_upper  an equal-tailed interval at `interval_level` (default 90%) of the
//                         member's expected value: `interval_draws` Monte Carlo draws, each of
//                         the model parameters from their asymptotic normal (log scale, inverse
//                         Hessian; parameters at a boundary held fixed) and then of the member's
//                         own posterior given alive — lambda ~ Gamma(r + x, alpha + T); dropout
//                         p ~ Beta(a, b + x) (BG/NBD), Beta(a, b + x + 1) (MBG/NBD), or death
//                         rate mu ~ Gamma(s, beta + T) (Pareto/NBD), or p ~ Beta(alpha + x, beta
//                         + n - x), theta ~ Beta(gamma, delta + n + 1) (BG/BB); spend rate nu ~
//                         Gamma(p x + q, gamma + x m) — giving margin x p_alive x (p / nu) x sum_k
//                         discounted E[occasions in unit k | lambda, p or mu] (E[N(t)] = (1 -
//                         exp(-lambda p t)) / p, or lambda (1 - exp(-mu t)) / mu). The alive state
//                         enters through its probability, so the draws average to clv; the
//                         interval is NaN with interval_draws = 0. Seeded per member: the same
//                         for any thread count. Cost O(members x draws x units).
//   lifecycle_stage       see below.
//
// Lifecycle stages (0 new, 1 active, 2 at_risk, 3 dormant, 4 lost; names in kLifecycleStages),
// at the cut. A member's own cycle is t_x / x when x > 0, else the program cycle C = the median
// of t_x / x over the repeat buyers (the median T when there are none). Then
//   new       x = 0 and T <= C: one order, and not yet one program cycle without a second;
// otherwise the stage is the later of two:
//   by recency  overdue = (T - t_x) / own cycle: <= at_risk_cycles (1) active, <=
//               dormant_cycles (2) at_risk, <= lost_cycles (4) dormant, else lost;
//   by p_alive  against thresholds relative to the program: the quantiles of p_alive over the
//               non-new members at the fit at levels at_risk_quantile (0.5), dormant_quantile
//               (0.25) and lost_quantile (0.1), each capped at at_risk_p_alive (0.8),
//               dormant_p_alive (0.5) and lost_p_alive (0.2): >= the first active, >= the
//               second at_risk, >= the third dormant, else lost. The caps keep a program where
//               nearly everyone is alive from demoting members over tiny differences.
// The thresholds are fixed at fit (saved with the model), so a stage does not change with the
// members a prediction is asked for.
//
// Member fields for the decisions (member_fields, sample_fields): clv, its percentile rank among
// the fitted members (ties share the highest rank), p_alive and the stage, as FeatureEncoder
// sample columns (numeric / categorical), uplift rows and Policy member conditions (joined to a
// UserTable). sample_fields gives them to sample rows at or after the fit's cut only (leak-safe);
// members without a fit get missing values (NaN, stage -1).
//
// Forecasters and model = "auto" (the default; a named model opts out of the backtest). Every
// forecaster's clv is an expected value. The purchase and spend forecast comes from one
// of: a purchase model above ("bgnbd", "mbgnbd", "paretonbd", "bgbb"); "naive" (the member's
// own rate x / T per time_unit, x mean_order_value for the spend); or "regression" — two
// Poisson (log-link) ridge regressions, of the occasions and of the spend in the next H
// time_units, on per-member features at a cut (see kCLVRegressionFeatures), rates and windows
// rather than totals (the members are older at the cut than at the backtest cut): the own rate
// x / T and recency (t_x, T - t_x, min(T / H, 1)), occasions in the last H/4, H/2 and H
// time_units (trend), spend in the last H, mean order value, the purchase model's own p_alive
// and expected purchases and spend over H, and benefit history (issued / claimed / redeemed
// events of the member per time_unit before the cut, and in the last H); features at the cut
// are clamped to their range at the backtest cut. Fitted by Newton's method (IRLS) on the
// Poisson likelihood (occasions) and quasi-likelihood (spend: any amount >= 0, zeros included),
// ridge penalty regression_l2 x mean(target) on the standardized coefficients, intercept free:
// the forecast exp(linear predictor) is a conditional mean, and at the fit its total equals the
// actual total exactly. For a horizon h the forecast is the rate over H x h (constant over the
// horizon). Files saved before the Poisson regression hold a median-like log1p regression
// (members with P(no occasion) >= 1/2 forecast 0); they load and predict as they did.
// The backtest (fit on an event log, forecaster auto or regression): H = backtest_horizon, or
// by default a quarter of the time from the earliest order to the cut (so the members at b have
// most of the history the members at the cut have); backtest cut b = cut - H.
// Features and the purchase models' fits are computed from the orders before b only, targets
// from [b, cut): strictly time-split inside the calibration period, so nothing at or after the
// cut is read. Each candidate's per-member MAE of purchases and of spend over [b, cut) is
// measured on the members with an order before b (the regression out-of-fold: two folds by a
// hash of the member index, each predicted by the regression trained on the other), with its
// total error (sum forecast - sum actual) / sum actual. "auto" picks the candidate with the
// least MAE(purchases) / MAE_naive(purchases) + MAE(spend) / MAE_naive(spend) among bgnbd,
// mbgnbd, paretonbd, naive and regression (ties: that order) — all expected values, so the
// choice trades no bias for a lower per-member error;
// the regression is then retrained on all backtest members and applied to the features at the
// cut, and the purchase model (p_alive, stages, intervals) is the best of the three purchase
// models by the same score. The choice and every candidate's errors are in
// CLVFitReport::selection. Without a backtest (fit on given summaries, or too little history
// before b: fewer than 20 members or no order in [b, cut)) "auto" is the purchase model
// CLVParams::model (BG/NBD by default) and the report says why. For naive and regression the
// interval is the purchase model's scaled by the forecast's clv over the purchase model's.
//
// Example:
//   perkrec::CLVParams p;
//   p.time_unit = perkrec::CLVParams::TimeUnit::week;
//   perkrec::CLVModel model(p);
//   model.fit(log, cut_time);                           // ordered events before cut_time
//   perkrec::CLVPrediction next_year = model.predict(52.0, 0.01, 0.3);
//   double value = next_year.clv[0];                    // of model.users()[0]
//   model.save("clv.perk");
//
// Thread safety: fit needs exclusive access; predict, summary access and save are const and
// safe from any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/io/serializable.hpp"
#include "perkrec/models/purchase.hpp"

namespace perkrec {

/// Lifecycle stage names, indexed by the codes of CLVPrediction::lifecycle_stage.
inline constexpr std::array<const char*, 5> kLifecycleStages = {"new", "active", "at_risk",
                                                                "dormant", "lost"};

/// The regression forecaster's features, in the order of CLVRegression's coefficients.
inline constexpr std::array<const char*, 17> kCLVRegressionFeatures = {"log1p_naive",
                                                                       "rate",
                                                                       "recency_fraction",
                                                                       "log1p_gap",
                                                                       "age_over_H",
                                                                       "log1p_recent_q",
                                                                       "log1p_recent_h",
                                                                       "log1p_recent_1",
                                                                       "log1p_value",
                                                                       "log1p_recent_spend",
                                                                       "log1p_model_purchases",
                                                                       "p_alive",
                                                                       "log1p_model_spend",
                                                                       "log1p_benefits_recent",
                                                                       "log1p_benefit_rate",
                                                                       "log1p_redeemed_recent",
                                                                       "one_time"};

struct CLVParams {
  using Model = PurchaseModelKind;
  enum class TimeUnit : std::uint8_t { day, week };
  /// Which forecast gives expected purchases and spend (see the file comment).
  enum class Forecaster : std::uint8_t { automatic, purchase, naive, regression };

  /// JSON "model": "auto" (forecaster automatic), "naive", "regression", or a purchase model
  /// name (forecaster purchase, model = that name).
  Forecaster forecaster = Forecaster::automatic;
  Model model = Model::bgnbd;  ///< purchase model: "bgnbd" | "mbgnbd" | "paretonbd" | "bgbb"
  double backtest_horizon =
      0.0;  ///< H in time_units; 0 = a quarter of the order history before the cut
  double regression_l2 = 1.0;  ///< ridge penalty of the regression (standardized features); >= 0
  TimeUnit time_unit = TimeUnit::week;  ///< unit of t_x, T, horizon and rates: "day" | "week"
  TimeUnit occasion = TimeUnit::day;    ///< orders in one such period are one occasion
  double penalizer = 0.0;               ///< >= 0; see MaximumLikelihoodOptions
  int max_iterations = 2000;            ///< Nelder-Mead iterations per fit; > 0
  double interval_level = 0.9;          ///< of clv_lower / clv_upper; in (0, 1)
  int interval_draws = 200;             ///< Monte Carlo draws per member; 0 = no interval (NaN)
  double at_risk_cycles = 1.0;          ///< overdue cycles before at_risk; > 0
  double dormant_cycles = 2.0;          ///< before dormant; >= at_risk_cycles
  double lost_cycles = 4.0;             ///< before lost; >= dormant_cycles
  double at_risk_quantile = 0.5;        ///< p_alive quantile below which at_risk; in [0, 1]
  double dormant_quantile = 0.25;       ///< below which dormant; <= at_risk_quantile
  double lost_quantile = 0.1;           ///< below which lost; <= dormant_quantile
  double at_risk_p_alive = 0.8;         ///< cap of the at_risk threshold; in [0, 1]
  double dormant_p_alive = 0.5;         ///< cap of the dormant threshold; <= at_risk_p_alive
  double lost_p_alive = 0.2;            ///< cap of the lost threshold; <= dormant_p_alive
  int num_threads = 0;                  ///< 0 = OpenMP default
  std::uint64_t seed = 42;              ///< of the interval draws

  /// Every field but the pair (forecaster, model), which JSON writes as the one key "model".
  static auto param_fields() {
    using P = CLVParams;
    static constexpr params::EnumName<TimeUnit> kUnits[] = {{TimeUnit::day, "day"},
                                                            {TimeUnit::week, "week"}};
    return std::make_tuple(
        params::field("backtest_horizon", &P::backtest_horizon, params::closed(0, 1e6)),
        params::field("regression_l2", &P::regression_l2, params::at_least(0)),
        params::field("time_unit", &P::time_unit, kUnits),
        params::field("occasion", &P::occasion, kUnits),
        params::field("penalizer", &P::penalizer, params::at_least(0)),
        params::field("max_iterations", &P::max_iterations, params::at_least(1)),
        params::field("interval_level", &P::interval_level, params::open(0, 1)),
        params::field("interval_draws", &P::interval_draws, params::closed(0, 100000)),
        params::field("at_risk_cycles", &P::at_risk_cycles, params::above(0)),
        params::field("dormant_cycles", &P::dormant_cycles, params::above(0)),
        params::field("lost_cycles", &P::lost_cycles, params::above(0)),
        params::field("at_risk_quantile", &P::at_risk_quantile, params::closed(0, 1)),
        params::field("dormant_quantile", &P::dormant_quantile, params::closed(0, 1)),
        params::field("lost_quantile", &P::lost_quantile, params::closed(0, 1)),
        params::field("at_risk_p_alive", &P::at_risk_p_alive, params::closed(0, 1)),
        params::field("dormant_p_alive", &P::dormant_p_alive, params::closed(0, 1)),
        params::field("lost_p_alive", &P::lost_p_alive, params::closed(0, 1)),
        params::field("num_threads", &P::num_threads, params::threads()),
        params::field("seed", &P::seed));
  }
  /// Throws ConfigError naming the field and value.
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static CLVParams from_json(const Json& j);
  /// Seconds in one time_unit / occasion period.
  static Timestamp unit_seconds(TimeUnit unit) {
    return unit == TimeUnit::day ? kSecondsPerDay : 7 * kSecondsPerDay;
  }
};

/// Per-member purchase summaries (see the file comment); one entry per summarized member.
struct CLVSummary {
  std::vector<Index> users;  ///< member indices, increasing
  std::vector<double> x, t_x, T, monetary;
  std::vector<double> mean_order_value;  ///< mean order_amount of all orders before the cut
  std::vector<Timestamp> first_order;    ///< time of the first order

  std::size_t size() const { return users.size(); }
  /// A summary from arrays, as the literature publishes them: users = 0..n-1, first_order = 0
  /// (unknown), mean_order_value = monetary. Throws InputError
  /// naming the array and position for lengths that differ or values that are not finite,
  /// x < 0, t_x < 0, t_x > T, T <= 0 or monetary < 0.
  static CLVSummary from_arrays(Span<const double> x, Span<const double> t_x, Span<const double> T,
                                Span<const double> monetary);
};

/// Summaries of the `ordered` events strictly before `cut_time` (see the file comment).
/// Throws InputError when cut_time is out of range, the log has no events, or no order lies
/// before the cut (naming cut_time and the earliest order).
PERKREC_INLINE CLVSummary
summarize_purchases(const EventLog& log, Timestamp cut_time,
                    CLVParams::TimeUnit time_unit = CLVParams::TimeUnit::week,
                    CLVParams::TimeUnit occasion = CLVParams::TimeUnit::day, int num_threads = 0);

/// A calibration / holdout split of a log (Fader, Hardie and Lee's evaluation): the summaries
/// of the members with an order before calibration_end (as summarize_purchases), and per such
/// member the occasions and spend in [calibration_end, observation_end). Holdout occasions are
/// grouped as in the calibration (one per UTC day, or per 7-day block counted from the member's
/// first order day; a block that straddles calibration_end counts in the holdout when it has an
/// order there); spend sums order_amount. Members whose first order is in the holdout are not
/// included. period_purchases[k] totals the holdout occasions that start in the k-th time_unit
/// after calibration_end (ceil(duration) periods, the last one possibly partial).
struct CLVHoldout {
  CLVSummary calibration;
  std::vector<double> purchases, spend;  ///< per calibration member
  std::vector<double> period_purchases;  ///< aggregate per time_unit period of the holdout
  double duration = 0;                   ///< observation_end - calibration_end, in time_units
};

/// See CLVHoldout. Throws InputError naming observation_end when it is not after
/// calibration_end, and as summarize_purchases otherwise. Parallel over members; the result is
/// the same for any num_threads.
PERKREC_INLINE CLVHoldout
calibration_holdout(const EventLog& log, Timestamp calibration_end, Timestamp observation_end,
                    CLVParams::TimeUnit time_unit = CLVParams::TimeUnit::week,
                    CLVParams::TimeUnit occasion = CLVParams::TimeUnit::day, int num_threads = 0);

/// A forecast of given summaries, one entry per member: expected occasions and expected spend.
struct CLVForecast {
  std::vector<double> expected_purchases;
  std::vector<double> clv;  ///< expected spend (no margin, no discount)
};

/// The naive own-rate forecast (the "naive" forecaster, and the baseline a forecast is checked
/// against on a holdout): per member expected_purchases = x / T x horizon (0 when T = 0) and
/// clv = expected_purchases x mean_order_value. Arrays of equal length (e.g. a CLVSummary's x,
/// T and mean_order_value); horizon in time_units. Throws InputError naming the array and
/// position for a length that differs, a value that is not finite, or x < 0 or T < 0, and
/// naming horizon when it is not finite and >= 0. O(members), serial; a pure function.
/// Example: naive_forecast(h.calibration.x, h.calibration.T, h.calibration.mean_order_value,
/// h.duration) for a CLVHoldout h.
PERKREC_INLINE CLVForecast naive_forecast(Span<const double> x, Span<const double> T,
                                          Span<const double> mean_order_value, double horizon);

/// One row per fitted member (in the order of CLVModel::users()).
struct CLVPrediction {
  std::vector<double> p_alive, expected_purchases, expected_order_value, clv, clv_lower, clv_upper;
  std::vector<std::uint8_t> lifecycle_stage;  ///< codes into kLifecycleStages
};

/// One member's history under a fitted model (CLVModel::p_alive_history): one row per time
/// asked for at which the member had an order before it.
struct CLVMemberHistory {
  std::vector<std::size_t> position;       ///< index of the row's time in the times asked for
  std::vector<double> x, t_x, T;           ///< the member's summary as of that time
  std::vector<double> p_alive;             ///< P(alive at that time)
  std::vector<double> expected_purchases;  ///< E[occasions in the next time_unit]
};

/// Member fields for the decisions (FeatureEncoder fields, uplift rows, Policy member
/// conditions): one row per member asked for (see CLVModel::member_fields and sample_fields).
/// A member the model has not fitted (no order before the cut, or an unknown member) has NaN
/// numbers and stage -1: a missing value that the encoder puts in its missing bucket ("other"
/// for the stage) and that satisfies no Policy condition.
struct CLVMemberFields {
  std::vector<double> clv;                   ///< CLVPrediction::clv
  std::vector<double> clv_percentile;        ///< fraction of fitted members with clv <= this one's
  std::vector<double> p_alive;               ///< CLVPrediction::p_alive
  std::vector<std::int8_t> lifecycle_stage;  ///< codes into kLifecycleStages; -1 = missing
  std::size_t size() const { return clv.size(); }
};

/// The percentile rank of each of `values` among them: the fraction of the values that are <=
/// it, in (0, 1] (ties share the highest rank: {1, 2, 2, 3} -> {0.25, 0.75, 0.75, 1}).
/// O(n log n). Throws InputError naming `name` and the position of a non-finite value.
PERKREC_INLINE std::vector<double> percentile_rank(Span<const double> values,
                                                   const char* name = "values");

/// The code of a lifecycle stage name (its index in kLifecycleStages). Throws InputError naming
/// `field` and the name when it is not one of them.
PERKREC_INLINE int lifecycle_stage_code(const std::string& name,
                                        const char* field = "lifecycle_stage");

/// What the last fit found.
/// The fitted purchase model with its fit (fit.params = model.params).
struct CLVPurchaseFit {
  PurchaseModel model;
  MaximumLikelihoodFit fit;
};

/// One candidate's backtest errors (per-member MAE over [b, cut)).
struct CLVBacktestError {
  std::string name;
  double mae_purchases = 0, mae_spend = 0, score = 0;
  /// (sum of forecasts - sum of actuals) / sum of actuals over the backtest members (NaN when
  /// unknown: files saved before it, or no actual occasion).
  double total_error_purchases = std::numeric_limits<double>::quiet_NaN();
  double total_error_spend = std::numeric_limits<double>::quiet_NaN();
};

/// How the forecast was chosen (see the file comment).
struct CLVSelection {
  std::string choice;  ///< "bgnbd", ..., "naive" or "regression"
  bool backtested = false;
  std::string note;                  ///< why there was no backtest, when there was none
  double horizon = 0;                ///< H, time_units
  Timestamp backtest_cut = kNoTime;  ///< b
  Offset members = 0;                ///< members with an order before b
  std::vector<CLVBacktestError> candidates;
  Json to_json() const;
};

/// The regression forecaster: log-link coefficients on standardized features (intercept first,
/// then one per kCLVRegressionFeatures entry), the features' means, scales (0 = constant,
/// unused) and ranges in training (features are clamped to them when applied).
struct CLVRegression {
  bool fitted = false;
  double horizon = 0;  ///< H, time_units
  std::vector<double> mean, scale, purchases, spend;
  std::vector<double> lo,
      hi;  ///< the features' range in training (applied features are clamped to it)
  /// Files saved before the Poisson regression only (link log1p): the linear probability of
  /// any occasion in H; empty for a Poisson regression.
  std::vector<double> active;
  Json to_json() const;
};

struct CLVFitReport {
  CLVSelection selection;
  CLVRegression regression;
  CLVPurchaseFit purchase;
  bool spend_fitted = false;
  GammaGammaFit spend;
  double program_cycle = 0;                    ///< C of the lifecycle rule, in time_units
  std::array<double, 3> p_alive_thresholds{};  ///< at_risk, dormant, lost quantiles of p_alive
  Json to_json() const;
};

class CLVModel : public Serializable<CLVModel> {
 public:
  static constexpr const char* kind = "CLVModel";

  explicit CLVModel(CLVParams params = {});

  /// Summarizes `log` at `cut_time` and fits. Validates first; on error the model is unchanged.
  /// The log's member ids (if any) are kept for the predictions.
  void fit(const EventLog& log, Timestamp cut_time, const Callbacks& callbacks = {});
  /// Fits on given summaries (e.g. a published table); user ids are cleared.
  void fit(const CLVSummary& summary, const Callbacks& callbacks = {});

  /// The purchase model's p_alive and expected purchases in the next `horizon` time_units for
  /// given summaries (arrays of equal length, in time_units; e.g. a member's history replayed
  /// at several dates). Throws InputError naming the array for bad lengths or values.
  void conditional(Span<const double> x, Span<const double> t_x, Span<const double> T,
                   double horizon, Span<double> p_alive, Span<double> expected_purchases) const;

  /// The aggregate tracking curve: expected occasions of the members of given summaries (as
  /// conditional takes them), summed over the members, in each of the next `periods` time_units
  /// after their cut — entry k is the sum of E[occasions in (0, e_k]] - E[occasions in (0,
  /// e_{k-1}]] with e_k = min(k + 1, end) (so with end < periods the last periods are partial
  /// or 0). periods in [0, 100000], end finite and >= 0; InputError naming them, and as
  /// conditional. Sums are numpy's pairwise sums. O(periods x members), parallel over members.
  std::vector<double> expected_purchases_by_period(Span<const double> x, Span<const double> t_x,
                                                   Span<const double> T, int periods,
                                                   double end) const;

  /// Member `user`'s (an index into log's members) p_alive and expected occasions in the next
  /// time_unit as they stood at each of `times`: the member's orders in `log` strictly before
  /// each time summarized as summarize_purchases does under this model's time_unit and
  /// occasion, then conditional(.., 1). Times at or before the member's first order give no
  /// row. InputError naming user (out of range) or times[i] (out of range), and as conditional.
  /// O(log events + times x log members), serial; the model need not be fitted on `log`.
  CLVMemberHistory p_alive_history(const EventLog& log, Index user,
                                   Span<const Timestamp> times) const;

  /// Predictions for every fitted member; horizon in time_units, > 0 and finite; discount_rate
  /// per time_unit, >= 0; margin finite and >= 0. Throws InputError naming the argument.
  CLVPrediction predict(double horizon, double discount_rate = 0.0, double margin = 1.0) const;

  /// Member fields of every fitted member (rows as users()): clv and p_alive as
  /// predict(horizon, discount_rate, margin) gives them (without the interval draws), the
  /// percentile rank of clv among the fitted members (percentile_rank) and the stage. Throws
  /// as predict.
  CLVMemberFields member_fields(double horizon, double discount_rate = 0.0,
                                double margin = 1.0) const;

  /// Leak-safe member fields of sample rows (e.g. issued benefits): row i gets the fields of
  /// member users[i] (an index into user_ids(), as the log the model was fitted on numbers its
  /// members; -1 = an unknown member, missing fields; a member without an order before the
  /// cut, missing too). Every timestamps[i] must be at or after cut_time(): the fit read only
  /// the orders strictly before the cut, so no row sees its own future. Throws InputError
  /// naming the first row whose time is before the cut, a member index outside [-1,
  /// n_users()), lengths that differ, a model fitted on given summaries (no cut), and as
  /// predict. O(fitted members + rows).
  CLVMemberFields sample_fields(Span<const std::int64_t> users, Span<const Timestamp> timestamps,
                                double horizon, double discount_rate = 0.0,
                                double margin = 1.0) const;

  bool fitted() const { return fitted_; }
  const CLVParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls (0 = OpenMP default). Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  const CLVFitReport& report() const { return report_; }
  const PurchaseModel& purchase_model() const { return report_.purchase.model; }
  /// The BG/NBD parameters; InputError when the model is not a fitted BG/NBD.
  BGNBD bgnbd() const;
  /// Summaries of the fitted members (as of the fit's cut).
  const CLVSummary& summary() const { return summary_; }
  /// Member indices of the fitted members (into user_ids()).
  const std::vector<Index>& users() const { return summary_.users; }
  Index n_users() const { return n_users_; }
  const IdMap& user_ids() const { return user_ids_; }
  /// The fit's cut time (kNoTime when fitted on given summaries).
  Timestamp cut_time() const { return cut_time_; }

  void write(ModelWriter& w, const std::string& prefix) const;
  static CLVModel read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;
  void fit_summary(CLVSummary summary, Index n_users, IdMap user_ids, Timestamp cut_time,
                   const Callbacks& callbacks, const EventLog* log = nullptr);
  std::uint8_t stage_of(std::size_t row, double p_alive) const;
  void check_prediction_args(const char* method, double horizon, double discount_rate,
                             double margin) const;
  CLVPrediction predict_rows(double horizon, double discount_rate, double margin, int draws) const;
  bool forecast_is_rate() const { return !forecast_purchases_.empty(); }

  CLVParams params_;
  /// Per fitted member, the naive or regression forecast per time_unit (empty for a purchase
  /// model).
  std::vector<double> forecast_purchases_, forecast_spend_;
  /// A median-like regression of an older file: P(any occasion in its horizon H) per fitted
  /// member (see the file comment); empty otherwise.
  std::vector<double> forecast_active_;
  bool fitted_ = false;
  CLVFitReport report_;
  CLVSummary summary_;
  Index n_users_ = 0;
  IdMap user_ids_;
  Timestamp cut_time_ = kNoTime;
};

namespace detail {
/// The regression forecaster's pieces, declared here for their tests (definitions and
/// documentation in clv_impl.hpp): the number of features, their standardization, the Poisson
/// ridge regression and its forecast for one feature row.
inline constexpr std::size_t kClvFeatures = kCLVRegressionFeatures.size();
PERKREC_INLINE void clv_standardize(const std::vector<double>& f, std::size_t n,
                                    const std::vector<std::uint8_t>& use, std::uint8_t keep,
                                    CLVRegression& sc);
PERKREC_INLINE double clv_regression_apply(const double* r, const CLVRegression& sc,
                                           const std::vector<double>& coef);
PERKREC_INLINE void clv_poisson(const std::vector<double>& f, const std::vector<double>& y,
                                const std::vector<std::uint8_t>& use, std::uint8_t keep, double l2,
                                int threads, const CLVRegression& sc, std::vector<double>& coef);
}  // namespace detail

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/clv_impl.hpp"
#endif
