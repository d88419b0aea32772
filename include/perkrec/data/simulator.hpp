// The membership simulator: a seeded, realistic loyalty program with known ground truth.
//
// What it generates
//  - Members with a hidden archetype — threshold_discount_sensitive, high_face_value_seeker,
//    points_redemption_active, discount_indifferent_loyal, dormant, new_member — and
//    demographic attributes correlated with it (age band, gender, tier, region, signup time).
//  - A catalog of benefits (default 48) across all kinds, face values, thresholds, scopes,
//    scenarios (regular, holiday, member_day, referral, new_member) and channels
//    (app, sms, email, store).
//  - `days` days of events. Organic orders follow a per-member renewal process (gamma
//    inter-purchase times: a cycle length and a regularity) in "operational time" that runs
//    faster on weekends, on the member's preferred weekday, on member days (a fixed day of the
//    month) and in a holiday peak; order hours cluster around the member's preferred hour.
//    Dormant members lapse on a hidden day; new members join during the period.
//  - A logging policy issues benefits to members outside the random control group on
//    campaign days, with known propensities. An issued benefit may be viewed (depends on the
//    member's channel affinity), claimed (logit of the member's planted preference utility),
//    and redeemed either on an extra purchase the benefit triggers (the incremental effect)
//    or on the member's next organic order when that order qualifies (threshold met, or
//    stretched to meet it) and the member remembers to use it; otherwise it expires.
//
// Ground truth (SimulationTruth) is computed in closed form from the same model, for a
// benefit issued at `reference_time` (the end of the simulated period):
//    p_claim      = p_open(channel) * sigmoid(1 + 0.6 utility) * sigmoid(claim_base + utility)
//    p_organic    = P(an organic order in the validity window | time since the last one)
// (the first two factors are the view probability: the member's open rate for the channel —
// halved once a member has lapsed — and their interest in what the preview shows)
//    redemption   = p_claim * (r + (1 - r) * p_organic * qualify * use)
//    incremental  = p_claim * r * (1 - p_organic)
// where utility sums the member's planted preference over the benefit's dimensions
// (BenefitDimensions) plus a value term, and r = sigmoid(induce_base + 0.8 utility + value).
// So a loyal member who buys weekly has a high redemption but near-zero incremental
// probability, and a lapsed member the opposite.
//
// What members buy and browse (opt-in, `behavior`; off by default, so every program simulated
// without it is unchanged): an ItemCatalog of `n_categories` categories (popularity
// pi_c ~ 1 / (c + 1)^0.7) with 8 items each and a brand level; each member's interests
// theta_u ~ Dirichlet(interest_concentration x pi) over the categories; every order (organic or
// induced) becomes a basket of 1 + Poisson(lines_per_order - 1) purchase lines whose categories
// follow theta_u (an order that redeemed a category-scoped benefit holds at least one line of
// that category), the order amount split evenly over its lines; before each order,
// Poisson(views_per_order) view events in the 3 days before it (an induced order's only after
// the claim that caused it), categories following theta_u.
// Orders after the end leave their views before the end in the log, as a real log cut at any
// time holds the browsing that leads to the next purchases; the truth conditions on the views
// the member's next organic order left (with none, an order in the next 3 days is less likely;
// with some, it is certain), so it uses what the log shows.
// A quarter of the benefits are scoped to one category (BenefitItems maps each scoped benefit to
// its category's or brand's items), and a category-scoped benefit's claim utility gains
// interest_effect x log(theta_u[c] / pi_c) (clamped to +-3): members respond to benefits for
// what they buy. theta_u and the baskets and views come from a stream of their own, so with
// interest_effect 0 the benefit event log does not depend on the interests at all (the catalog's
// scopes differ from a program without behaviour). SimulationTruth::interest holds theta.
//
// Reproducibility: each member draws from its own stream (seed, member), so the program is
// identical for any num_threads. All times are UTC; start_time must be a midnight.
//
// Example:
//   perkrec::SimulatorParams p;
//   p.n_users = 20000;
//   perkrec::SimulatedProgram program = perkrec::simulate(p);
//   const perkrec::EventLog& log = program.events;
//   float truth = program.truth.redemption(user, benefit);
//
// Cost: O(members x (days + events + benefits)); about 10M events in a few seconds on 2 cores.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/benefit_dimensions.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/data/user_table.hpp"

namespace perkrec {

/// Hidden member archetypes planted by the simulator.
enum class Archetype : std::uint8_t {
  threshold_discount_sensitive,
  high_face_value_seeker,
  points_redemption_active,
  discount_indifferent_loyal,
  dormant,
  new_member,
};
inline constexpr int kNumArchetypes = 6;
PERKREC_INLINE const char* to_string(Archetype a);

struct SimulatorParams {
  Index n_users = 10000;              ///< members; >= 1
  Index n_benefits = 48;              ///< catalog size; >= 8
  std::int32_t days = 180;            ///< simulated days; 28..3650
  Timestamp start_time = 1767225600;  ///< first day, a UTC midnight (default 2026-01-01)
  double control_fraction = 0.1;      ///< share of members never issued anything; [0, 1)
  double issues_per_week = 1.5;       ///< mean benefits issued per treated member-week; [0, 14]
  /// Shares of the archetypes (threshold, high-value, points, loyal, dormant, new); >= 0,
  /// sum > 0.
  std::array<double, kNumArchetypes> archetype_mix = {0.22, 0.18, 0.18, 0.17, 0.15, 0.10};
  double preference_noise = 0.25;        ///< std dev of a member's deviation from the
                                         ///< archetype preferences; [0, 3]
  std::int32_t member_day_of_month = 8;  ///< member day (purchases and issuing peak); 1..28
  std::int32_t holiday_start_day = 140;  ///< first day of the holiday peak; >= 0
  std::int32_t holiday_days = 14;        ///< length of the holiday peak; >= 0
  /// What members buy and browse (see the file comment); off = no items, baskets or views.
  bool behavior = false;
  std::int32_t n_categories = 12;       ///< item categories with behaviour; 2..200
  double interest_concentration = 2.0;  ///< Dirichlet strength of theta_u; (0, 1e4]
  double interest_effect = 1.0;         ///< log-odds per log(theta / pi), category scope; [0, 5]
  double lines_per_order = 4.0;         ///< mean purchase lines per order; [1, 50]
  double views_per_order = 2.0;         ///< mean view events before each order; [0, 50]
  std::uint64_t seed = 42;
  int num_threads = 0;  ///< 0 = OpenMP default

  static auto param_fields() {
    using P = SimulatorParams;
    return std::make_tuple(
        params::field("n_users", &P::n_users, params::at_least(1)),
        params::field("n_benefits", &P::n_benefits, params::at_least(8)),
        params::field("days", &P::days, params::closed(28, 3650)),
        params::field("start_time", &P::start_time,
                      params::at_least(0)),  // a UTC midnight: validate()
        params::field("control_fraction", &P::control_fraction, params::closed_open(0, 1)),
        params::field("issues_per_week", &P::issues_per_week, params::closed(0, 14)),
        params::field("archetype_mix", &P::archetype_mix),  // each >= 0, sum > 0: validate()
        params::field("preference_noise", &P::preference_noise, params::closed(0, 3)),
        params::field("member_day_of_month", &P::member_day_of_month, params::closed(1, 28)),
        params::field("holiday_start_day", &P::holiday_start_day, params::at_least(0)),
        params::field("holiday_days", &P::holiday_days, params::at_least(0)),
        params::field("behavior", &P::behavior),
        params::field("n_categories", &P::n_categories, params::closed(2, 200)),
        params::field("interest_concentration", &P::interest_concentration,
                      params::Bounds{0, 1e4, true, false, false}),
        params::field("interest_effect", &P::interest_effect, params::closed(0, 5)),
        params::field("lines_per_order", &P::lines_per_order, params::closed(1, 50)),
        params::field("views_per_order", &P::views_per_order, params::closed(0, 50)),
        params::field("seed", &P::seed),
        params::field("num_threads", &P::num_threads, params::threads()));
  }
  /// Throws ConfigError naming the field.
  void validate() const;
};

/// What the simulator knows and a model has to recover.
struct SimulationTruth {
  Index n_users = 0;
  Index n_benefits = 0;
  Timestamp reference_time = 0;  ///< truth matrices are for a benefit issued at this time

  std::vector<std::uint8_t> archetype;  ///< per member, an Archetype

  /// Preference dimensions (BenefitDimensions of the catalog) and, per member (row-major
  /// n_users x n_dimensions):
  std::vector<std::string> dimension_names;
  /// the planted log-odds lift of each dimension in the member's claim utility, and
  std::vector<float> preference_lift;
  /// the member's expected claim rate for benefits with that attribute (averaged over the
  /// catalog with the issuing policy's base weights) divided by the population's: the member's
  /// response rate relative to the population, in the units a preference model estimates.
  std::vector<float> preference;

  /// Per (member, benefit), row-major n_users x n_benefits, for issuing at reference_time.
  std::vector<float> claim_probability;
  std::vector<float> redemption_probability;
  std::vector<float> incremental_probability;  ///< P(purchase | issued) - P(purchase | not)

  /// Per member.
  std::vector<float> preferred_hour;           ///< hour of day (UTC) orders cluster around
  std::vector<std::int8_t> preferred_weekday;  ///< Monday = 0; -1 = none
  std::vector<float> cycle_days;               ///< mean days between organic orders
  std::vector<float> cycle_shape;              ///< gamma shape of inter-order times (regularity)
  std::vector<float> basket_median;            ///< median order amount
  std::vector<Timestamp> signup_time;
  std::vector<Timestamp> lapse_time;                ///< when a dormant member lapsed; -1 = never
  std::vector<std::uint8_t> control;                ///< 1 = control group (never issued anything)
  std::vector<Timestamp> expected_next_order_time;  ///< expected next organic order after
                                                    ///< reference_time

  /// With behaviour (else empty): the item categories, their population shares pi and each
  /// member's planted interests theta (row-major n_users x categories, rows sum to 1).
  std::vector<std::string> category_names;
  std::vector<double> category_share;
  std::vector<float> interest;

  float claim(Index u, Index b) const { return claim_probability[idx(u, b)]; }
  float redemption(Index u, Index b) const { return redemption_probability[idx(u, b)]; }
  float incremental(Index u, Index b) const { return incremental_probability[idx(u, b)]; }

 private:
  std::size_t idx(Index u, Index b) const {
    return static_cast<std::size_t>(u) * static_cast<std::size_t>(n_benefits) +
           static_cast<std::size_t>(b);
  }
};

/// A simulated program: catalog, member attributes, event log and ground truth; with
/// behaviour also the items, what each benefit applies to and what members bought and browsed
/// (actions "purchase" and "view"; member indices as in `events`).
struct SimulatedProgram {
  SimulatorParams params;
  Catalog catalog;
  UserTable users;
  EventLog events;
  SimulationTruth truth;
  ItemCatalog items;           ///< empty without behaviour
  BenefitItems benefit_items;  ///< empty without behaviour
  BehaviorLog behavior;        ///< empty without behaviour
};

/// Generates a program. Reports progress through `callbacks` ("simulate", members done) and
/// stops with Interrupted when asked. Throws ConfigError for invalid params.
PERKREC_INLINE SimulatedProgram simulate(const SimulatorParams& params,
                                         const Callbacks& callbacks = {});

/// The catalog the simulator uses for `params` (deterministic in seed and n_benefits).
PERKREC_INLINE Catalog simulated_catalog(const SimulatorParams& params);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/simulator_impl.hpp"
#endif
