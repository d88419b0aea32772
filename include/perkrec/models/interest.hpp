// InterestModel: which categories (or brands, departments, any ItemCatalog level) each member
// is most interested in, with intervals — from what members buy and browse (a BehaviorLog).
//
// Model. Member u's activity in value v of the level (a category, a brand, ...) is
//   y_uv = sum over u's events strictly before cut_time whose item has value v and whose action
//          is counted, of  measure(event) x 2^(-(cut_time - t) / half_life_days)
// with measure 1 (count), the quantity or the amount (spend). The member's shares of activity
// follow a Dirichlet prior centred on the population's shares pi_v = sum_u y_uv / sum_uv y_uv
// with concentration `prior_strength` (alpha; 0 = fitted by empirical Bayes: the alpha that
// maximizes the Dirichlet-multinomial marginal likelihood of every member's activity, a
// golden-section search over log alpha in [1e-2, 1e6]). The posterior share of v is
// Beta(y_uv + alpha pi_v, N_u - y_uv + alpha (1 - pi_v)), N_u = sum_v y_uv, so
//   share(u, v) = (y_uv + alpha pi_v) / (N_u + alpha),   lift(u, v) = share(u, v) / pi_v,
// and interval(u, v, level) gives that Beta's equal-tailed quantiles over pi_v. A member with
// little activity stays near lift 1 everywhere; one who bought a category 40 times out of 50
// is far above it. Decayed activity enters as if it were counts (documented, as in the
// preference model): with the default measure, a member's recent events weigh about 1.
//
// "Most interested in": top() ranks each member's values by posterior lift (ties: lower value
// code first). Values the member never touched all have lift alpha / (N_u + alpha) <= 1 and
// rank after every value touched; they fill the list by population share. group_top() does
// the same for groups of members (segments): each group's values by mean lift over its members.
//
// Example:
//   perkrec::InterestParams p;
//   p.level = "category";
//   perkrec::InterestModel model(p);
//   model.fit(behavior, items, cut_time);
//   perkrec::TopInterests top = model.top(users, 5, 0.9);   // 5 per member, 90% intervals
//   perkrec::GroupInterests by_segment = model.group_top(segment_of_member, n_segments, 5);
//
// Cost: fit O(events before the cut + members x log) for the counts, O(non-zero member-value
// cells) per evaluation of the marginal likelihood (about 60), parallel over members with a
// reduction whose blocks depend on the member count only (thread-count invariant results).
// Memory: 16 bytes per non-zero member-value cell + 8 per member.
// Thread safety: fit needs exclusive access; every const method is safe from any number of
// threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

struct InterestParams {
  enum class Measure : std::uint8_t {
    count,     ///< each event counts 1
    quantity,  ///< the event's quantity
    spend,     ///< the event's amount
  };
  std::string level = "category";    ///< an ItemCatalog level name (non-empty)
  std::vector<std::string> actions;  ///< action names counted (distinct); empty = every action
  Measure measure = Measure::count;
  double half_life_days = 90.0;  ///< decay of older events; >= 0, 0 = no decay
  double prior_strength = 0.0;   ///< Dirichlet concentration alpha; 0 = fitted (EB), else > 0
  int num_threads = 0;           ///< 0 = OpenMP default; never changes the result

  static auto param_fields() {
    using P = InterestParams;
    static constexpr params::EnumName<Measure> kMeasures[] = {
        {Measure::count, "count"}, {Measure::quantity, "quantity"}, {Measure::spend, "spend"}};
    return std::make_tuple(params::field("level", &P::level),  // non-empty: validate()
                           params::field("actions", &P::actions),
                           params::field("measure", &P::measure, kMeasures),
                           params::field("half_life_days", &P::half_life_days, params::at_least(0)),
                           params::field("prior_strength", &P::prior_strength, params::at_least(0)),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  /// Throws ConfigError naming the field (empty level, duplicate or empty action name, ...).
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static InterestParams from_json(const Json& j);
};

/// Each requested member's top values, member by member in request order, best first: row i
/// is (user[i], rank[i], value[i]) with the posterior share, lift, its interval bounds (lift
/// units) and the member's activity in the value (y_uv, decayed).
struct TopInterests {
  std::vector<Index> user;
  std::vector<std::int32_t> rank;  ///< 1 = most interested
  std::vector<Index> value;        ///< code into value_names()
  std::vector<float> share, lift, lower, upper, activity;
};

/// Per group, its values of highest mean lift (InterestModel::group_top), groups in code order.
struct GroupInterests {
  std::vector<std::int32_t> group;  ///< group code
  std::vector<std::int32_t> rank;   ///< 1 = highest mean lift in the group
  std::vector<Index> value;         ///< code into value_names()
  std::vector<double> mean_lift;    ///< the value's mean posterior lift over the group's members
  std::vector<Offset> members;      ///< members in the group
};

class InterestModel : public Serializable<InterestModel> {
 public:
  static constexpr const char* kind = "InterestModel";

  explicit InterestModel(InterestParams params = {});

  /// Learns every member's interest from `behavior`'s events strictly before `cut_time`.
  /// `items` must be the catalog the log's item codes index (same size) and hold `level`.
  /// Throws InputError (sizes differ, level or action absent, no counted event before the cut)
  /// before any state changes.
  void fit(const BehaviorLog& behavior, const ItemCatalog& items, Timestamp cut_time,
           const Callbacks& callbacks = {});

  bool fitted() const { return fitted_; }
  const InterestParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  Index n_users() const { return static_cast<Index>(total_.size()); }
  Index n_values() const { return static_cast<Index>(population_share_.size()); }
  /// The level's values (its dictionary in the ItemCatalog at fit time).
  const std::vector<std::string>& value_names() const { return value_names_; }
  /// pi_v, the population's share of activity in each value (sums to 1).
  const std::vector<double>& population_share() const { return population_share_; }
  /// alpha: fitted or given.
  double prior_strength() const { return alpha_; }
  Timestamp cut_time() const { return cut_time_; }
  /// N_u, each member's total (decayed) activity.
  const std::vector<float>& total() const { return total_; }
  /// Counted events before the cut whose item has no value at the level (skipped).
  std::int64_t missing_value_events() const { return missing_value_events_; }

  /// Posterior share and lift of value v for member u (InputError out of range).
  double share(Index u, Index v) const;
  double lift(Index u, Index v) const;
  /// Members x values lifts, row-major (rows in the order of `users`).
  std::vector<float> lifts(Span<const Index> users) const;
  /// Mean posterior lift of each value over the members of each group: `group` holds one code
  /// per member (n_users of them) in [0, n_groups) or -1 for none; returns n_groups x n_values,
  /// row-major (a group without members: all 1, the prior). O(members + non-zero cells).
  /// InputError for a wrong length or a code out of range.
  std::vector<double> group_lifts(Span<const std::int32_t> group, std::int32_t n_groups) const;
  /// The n (>= 1) values of highest mean lift (group_lifts) of each group with members, best
  /// first (ties: lower value code first); groups without members have no rows. What a segment
  /// (e.g. the threshold-discount-sensitive members) is most interested in. O(members +
  /// non-zero cells + groups x values log values). InputError as group_lifts, or for n < 1.
  GroupInterests group_top(Span<const std::int32_t> group, std::int32_t n_groups, int n) const;
  /// The n (>= 1) values of highest posterior lift per member, with equal-tailed intervals at
  /// `level` in (0, 1). InputError for members out of range or bad n / level.
  TopInterests top(Span<const Index> users, int n, double level = 0.9) const;

  /// External ids of the fitted members (saved with the model): empty or n_users ids.
  void set_user_ids(IdMap users);
  const IdMap& user_ids() const { return user_ids_; }

  void write(ModelWriter& w, const std::string& prefix) const;
  static InterestModel read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;
  void check_user(Index u, const char* method) const;
  double activity(Index u, Index v) const;

  InterestParams params_;
  bool fitted_ = false;
  Timestamp cut_time_ = 0;
  double alpha_ = 0.0;
  std::int64_t missing_value_events_ = 0;
  std::vector<std::string> value_names_;
  std::vector<double> population_share_;
  std::vector<float> total_;
  std::vector<Offset> offsets_{0};
  std::vector<Index> value_;
  std::vector<float> weight_;
  IdMap user_ids_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/interest_impl.hpp"
#endif
