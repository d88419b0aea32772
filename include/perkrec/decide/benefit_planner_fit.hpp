// fit_benefit_planner: an event log (with its catalog, optional user table and optional
// behaviour) to a BenefitPlannerFile, the fitted pipeline that BenefitPlanner
// (decide/benefit_planner.hpp) plans and answers from. perkrec.BenefitPlanner.fit is this
// function; a C++ service or training job calls it directly.
//
// The fit, in order (the same numbers as perkrec.BenefitPlanner.fit, one recipe):
//   0. segment checkpoints (params.segment_field): PreferenceModels fitted on the events
//      strictly before t_start + k x kSegmentCheckpointDays days (k >= 1, strictly before the
//      log's end); each member's default segment as of a row's time (the latest checkpoint at
//      or before it, "none" before the first) is the row's kMemberSegmentColumn;
//   1. the training rows: every issue (an `issued` event with a benefit) logged before `cut`
//      whose validity ended by the end of the log, labelled from the whole log
//      (features/redemption_labels.hpp), with the columns the plan scores
//      (perkrec.pipeline.with_attributes: the catalog's, the user table's, weekday, hour; built by
//      the same code as BenefitPlanner's plan-time rows), encoded by a FeatureEncoder of
//      benefit_planner_default_fields() (each optional) + the member segment + the behaviour
//      field (params.behavior_field, or benefit_planner_default_behavior_field() over every
//      level and action of the behaviour);
//   2. the FM (params: factors, epochs, ...) weighted by issue_weights of the logged
//      propensities (weighting "ipw"), early-stopped on the held-out issues (after `cut`,
//      validity ended by the end of the log); its encoder stored in its metadata;
//   3. with shrink: the held-out issues with the FM's predictions (and their issue weights when
//      the log has propensities), what the plan's interaction shrinkage fits its slope on;
//   4. the PreferenceModel at the end of the log (with the user table as covariates), the
//      order values (margin x median basket), and with incremental "control" the control-group
//      share, all as of the end of the log;
//   5. with pooled / preference_offset: fit_pooled_member_effects and fit_preference_weight
//      (decide/pooled_effects.hpp) on the issues whose validity ended by `cut` (the fit) or,
//      after it, by the end of the log (the held-out slope and weight), the FM's prediction at
//      each issue as the offset (the preference weight from a PreferenceModel fitted at `cut`);
//   5b. with benefit_level: benefit_levels (decide/calibration.hpp) of the held-out issues of
//      step 3 (the FM's clipped predictions, labels and issue weights), stored as the file's
//      per-benefit factors (the held-out issues themselves are stored only with shrink);
//   6. the config: the policy, the parameters and the times, as BenefitPlanner reads them.
// With fm_threads = 1 the result is bit-reproducible (the FM's Hogwild SGD is not otherwise);
// every other stage is identical for any thread count.
//
// Cost: one PreferenceModel fit per checkpoint (about days / 30) plus two more, the FM fit
// (O(epochs x rows x fields x factors)), three encodings of the issues (O(rows x fields) plus
// the history pass, O(rows log rows + events)); memory: the issues' sparse rows.
// Thread safety: a pure function of its inputs; run as many at once as memory allows.
// Errors, all before any fitting: ConfigError naming the field for bad params (validate());
// InputError naming the field for a catalog or user table of another size than the log, an
// empty log, `cut` after the log's last event, weighting "ipw" without logged propensities,
// incremental "control" without the control flag, a user-table column of another type than
// the default field that reads it (a numeric "tier": the column and the field named), a
// behaviour field without behaviour, a behaviour of other benefits / members / items or with
// a member map other than the event log's, no issues before `cut`, and no finished
// issues after it when early stopping, the shrinkage or the pooled effects need them.
//
// Example:
//   perkrec::BenefitPlannerFitParams params;
//   params.policy = perkrec::parse_json_strict<perkrec::ConfigError>(policy_text, "policy");
//   perkrec::BenefitPlannerFile file =
//       perkrec::fit_benefit_planner(program.events, program.catalog, &program.users,
//                                    perkrec::kNoTime, nullptr, params);
//   file.save("planner.perk");
//   perkrec::BenefitPlanner planner(std::move(file));
//   auto plan = planner.plan(planner.end_time());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/user_table.hpp"
#include "perkrec/decide/benefit_planner_file.hpp"
#include "perkrec/features/feature_encoder.hpp"
#include "perkrec/models/fm.hpp"

namespace perkrec {

/// The default cut: the log's last this many days are held out.
inline constexpr int kDefaultCutDays = 30;
/// Days between the segment checkpoints of params.segment_field.
inline constexpr int kSegmentCheckpointDays = 30;

/// The FM's fields of the fit (a FeatureEncoder field array; the fit marks each optional):
/// ids, the benefit's attributes, the member's attributes, weekday and hour, the member's and
/// the benefit's history. perkrec.fm.DEFAULT_FIELDS reads this list.
PERKREC_INLINE const Json& benefit_planner_default_fields();
/// The behaviour field the fit adds when given behaviour and no params.behavior_field; its
/// "levels" and "actions" (null here) become every level of the item catalog and every action
/// of the log. Its aggregates do not grow with the length of the history (decayed counts, days
/// since the last event, share of wallet): the plan scores later than every training issue.
PERKREC_INLINE const Json& benefit_planner_default_behavior_field();

/// perkrec.BenefitPlanner's parameters (the same names; the config's "params", "fm_params",
/// "preference_params" and "policy").
struct BenefitPlannerFitParams {
  // The FM.
  int factors = 8;                ///< > 0 (FMParams)
  int epochs = -1;                ///< -1 = 10 with early stopping, else 6; >= 0 otherwise
  double reg_linear = 1e-4;       ///< >= 0
  double reg_factors = 1e-4;      ///< >= 0
  double learning_rate = 0.05;    ///< > 0
  bool early_stopping = true;     ///< keep the best epoch on the held-out issues
  int early_stopping_rounds = 2;  ///< epochs without improvement before stopping; >= 1
  int fm_threads = 1;             ///< the FM's threads (1: bit-reproducible); 0 = OpenMP default
  std::uint64_t seed = 42;        ///< the FM's seed
  // The pipeline.
  std::string weighting = "ipw";       ///< "ipw" (clipped inverse logged propensity) or "none"
  bool shrink = true;                  ///< store the held-out issues for the interaction shrinkage
  bool pooled = true;                  ///< fit pooled member effects on top of the FM
  bool preference_offset = false;      ///< fit the preference model's kind log-preference weight
  std::string incremental = "timing";  ///< "timing" or "control" (the random control group)
  double margin = 0.3;                 ///< share of the median basket a redemption earns; (0, 1]
  /// PreferenceModel keyword arguments (PreferenceParams JSON keys; missing keys keep their
  /// defaults, num_threads defaults to `num_threads`); stored as given.
  Json preference_params = Json::object();
  // The planner (stored in the config; BenefitPlanner reads them).
  std::string objective = "incremental";  ///< PlannerParams::objective
  int top_k = 50;                         ///< PlannerParams::top_k
  std::string method = "dual";            ///< PlannerParams::method
  int num_threads = 0;                    ///< planner, encoder and preference models
  /// null = benefit_planner_default_behavior_field() when behaviour is given; else a
  /// FeatureEncoder field object of kind "behavior" (name defaults to "behavior"), which makes
  /// behaviour required.
  Json behavior_field = nullptr;
  bool segment_field = true;  ///< the member's as-of segment as a categorical field
  /// Multiply the plan's P by per-benefit level factors measured on the held-out issues
  /// (decide/calibration.hpp benefit_levels, prior BenefitLevelParams::prior).
  bool benefit_level = true;
  Json policy = Json::object();  ///< Policy JSON (decide/policy.hpp)

  /// ConfigError naming the field (the FM's, the preference model's, the planner's and the
  /// policy's own checks included).
  void validate() const;
  /// The FM's params (FMParams JSON) as the fit uses them.
  Json fm_params() const;
  /// The preference model's params (preference_params with num_threads defaulted).
  Json preference_params_json() const;
  /// behavior_field with its name and kind defaulted (null stays null).
  Json resolved_behavior_field() const;
  /// The config BenefitPlannerFile stores ({policy, params, fm_params, preference_params,
  /// cut_time, end_time}); from_config reads it back (ModelFormatError-free: ConfigError
  /// naming the key for a config that is not a pipeline's). from_config is tolerant: it ignores
  /// keys it does not know in "params" and "fm_params" (model files of other versions);
  /// from_json, for a config given to the fit directly, also rejects them (ConfigError naming
  /// the key's JSON pointer, e.g. "/params/shrinkk"; the policy and the preference params are
  /// read strictly by both). Both accept a stored config's "cut_time" and "end_time" and read
  /// neither: the fit takes its cut as an argument.
  Json to_config(Timestamp cut_time, Timestamp end_time) const;
  static BenefitPlannerFitParams from_config(const Json& config);
  static BenefitPlannerFitParams from_json(const Json& config);
};

/// The checkpoints of params.segment_field: times (epoch seconds, ascending) and, per
/// checkpoint, every member's default segment name.
struct SegmentCheckpoints {
  std::vector<Timestamp> times;
  std::vector<std::vector<std::string>> segments;
  /// The segment of member `user` as of `time` ("none" before the first checkpoint or for a
  /// member out of range).
  const std::string& at(Index user, Timestamp time) const;
};

/// What the fit measured beyond the file (the file does not store these).
struct BenefitPlannerFitInfo {
  SegmentCheckpoints checkpoints;  ///< step 0's (empty without segment_field)
  /// Step 5's preference weight before its clip to [0, 1] (where the Newton steps ended;
  /// the file stores the clipped one); empty without preference_offset.
  std::optional<double> preference_weight_unclipped;
};

/// Step 0 of the file comment alone (what perkrec.BenefitPlanner.with_member_segment reads).
PERKREC_INLINE SegmentCheckpoints benefit_planner_segment_checkpoints(
    const EventLog& events, const Catalog& catalog, const UserTable* user_table,
    const BenefitPlannerFitParams& params = {});

/// The fit of the file comment. `user_table`, `behavior`: nullable. `cut`: kNoTime = the log's
/// last event - kDefaultCutDays days. `info` (optional) receives step 0's checkpoints and the
/// unclipped preference weight. Progress: the FM's and the final preference model's phases.
PERKREC_INLINE BenefitPlannerFile fit_benefit_planner(
    const EventLog& events, const Catalog& catalog, const UserTable* user_table = nullptr,
    Timestamp cut = kNoTime, const BehaviorData* behavior = nullptr,
    const BenefitPlannerFitParams& params = {}, const Callbacks& callbacks = {},
    BenefitPlannerFitInfo* info = nullptr);

namespace detail {
/// Python's json.dumps(value) of a parsed JSON value (", " and ": " separators, ASCII
/// escapes, repr floats): the text the Python package stored where a file holds JSON text.
PERKREC_INLINE std::string python_json_dumps(const Json& value);
}  // namespace detail

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/benefit_planner_fit_impl.hpp"
#endif
