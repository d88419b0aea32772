// Definitions for simulator.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "perkrec/core/math.hpp"
#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/data/simulator.hpp"

namespace perkrec {

PERKREC_INLINE const char* to_string(Archetype a) {
  switch (a) {
    case Archetype::threshold_discount_sensitive:
      return "threshold_discount_sensitive";
    case Archetype::high_face_value_seeker:
      return "high_face_value_seeker";
    case Archetype::points_redemption_active:
      return "points_redemption_active";
    case Archetype::discount_indifferent_loyal:
      return "discount_indifferent_loyal";
    case Archetype::dormant:
      return "dormant";
    case Archetype::new_member:
      return "new_member";
  }
  return "?";
}

PERKREC_INLINE void SimulatorParams::validate() const {
  params::validate_fields(*this, "SimulatorParams");
  if (start_time % kSecondsPerDay != 0) {
    detail::raise<ConfigError>("SimulatorParams: start_time must be a UTC midnight >= 0 (got ",
                               start_time, ")");
  }
  double total = 0;
  for (std::size_t i = 0; i < archetype_mix.size(); ++i) {
    if (!(archetype_mix[i] >= 0) || !std::isfinite(archetype_mix[i])) {
      detail::raise<ConfigError>("SimulatorParams: archetype_mix[", i,
                                 "] must be finite and >= 0 (got ", archetype_mix[i], ")");
    }
    total += archetype_mix[i];
  }
  if (!(total > 0)) {
    detail::raise<ConfigError>("SimulatorParams: archetype_mix must have a positive sum (got ",
                               total, ")");
  }
}

namespace detail::sim {

inline constexpr const char* kScenarios[] = {"regular", "holiday", "member_day", "referral",
                                             "new_member"};
inline constexpr const char* kChannels[] = {"app", "sms", "email", "store"};
inline constexpr int kNumChannels = 4;
inline constexpr int kStoreChannel = 3;
inline constexpr double kTypicalBasket = 60.0;
inline constexpr double kSendHour = 10.0;
inline constexpr int kFutureDays = 400;  // horizon past the end for truth computations
inline constexpr double kLapsedRate = 0.1;
inline constexpr double kPreferenceScale = 0.8;  // archetype lifts are scaled by this
inline constexpr double kChannelLift = 0.8;      // the member's preferred issuing channel
// Behaviour (SimulatorParams::behavior): items per category, brands, the view window.
inline constexpr int kItemsPerCategory = 8;
inline constexpr const char* kItemBrands[3] = {"house_brand", "partner_brand", "national_brand"};
inline constexpr double kViewWindowDays = 3.0;
inline constexpr double kInterestLogClamp = 3.0;

// Category names of a program with behaviour: n of them, cycling the list with a suffix.
inline std::vector<std::string> behavior_categories(int n) {
  static constexpr const char* kNames[24] = {
      "bakery",  "dairy",         "produce", "meat",       "frozen", "snacks",
      "drinks",  "household",     "pantry",  "baby",       "pet",    "deli",
      "seafood", "breakfast",     "wine",    "health",     "beauty", "apparel",
      "toys",    "personal_care", "garden",  "stationery", "books",  "electronics"};
  std::vector<std::string> out;
  for (int c = 0; c < n; ++c) {
    std::string name = kNames[c % 24];
    if (c >= 24) name += "_" + std::to_string(c / 24 + 1);
    out.push_back(std::move(name));
  }
  return out;
}

// Population shares of the categories: pi_c proportional to 1 / (c + 1)^0.7.
inline std::vector<double> behavior_category_shares(int n) {
  std::vector<double> pi(static_cast<std::size_t>(n));
  double total = 0;
  for (int c = 0; c < n; ++c) total += pi[static_cast<std::size_t>(c)] = std::pow(c + 1.0, -0.7);
  for (double& v : pi) v /= total;
  return pi;
}

// Opening an offer reveals interest too (the preview shows the benefit): the view
// probability is the channel's open rate times an interest factor in (0, 1].
inline constexpr double kViewInterestBase = 1.0;
inline constexpr double kViewInterestSlope = 0.6;

inline constexpr const char* kAgeBands[] = {"18-24", "25-34", "35-44", "45-54", "55+"};
inline constexpr const char* kGenders[] = {"F", "M"};
inline constexpr const char* kTiers[] = {"basic", "silver", "gold", "platinum"};
inline constexpr const char* kRegions[] = {"north", "south", "east", "west", "central"};

// Per-archetype behaviour: claim and induce logit bases, threshold stretching, use on an
// organic order, mean cycle days and demographic mixes.
struct ArchetypeProfile {
  double claim_base;
  double induce_base;
  double stretch;
  double use;
  double cycle_days;
  double age[5];
  double female;
  double tier[4];
  std::vector<std::pair<const char*, double>> preferences;
};

inline const ArchetypeProfile& profile(Archetype a) {
  // Complete profiles over every dimension group (log-odds lifts before kPreferenceScale), so
  // that archetypes differ in rank order across kinds, face values, thresholds, scopes and
  // scenarios, not only in one favourite.
  static const ArchetypeProfile kProfiles[kNumArchetypes] = {
      {-1.2,
       -1.3,
       0.70,
       0.90,
       14.0,
       {0.15, 0.35, 0.30, 0.15, 0.05},
       0.62,
       {0.35, 0.40, 0.20, 0.05},
       {{"kind:discount", 0.2},          {"kind:threshold_discount", 1.8},
        {"kind:percent_off", 0.8},       {"kind:gift", -0.8},
        {"kind:points", -1.2},           {"kind:free_shipping", 0.3},
        {"kind:member_exclusive", -0.6}, {"kind:service", -1.0},
        {"face_value:<10", -0.3},        {"face_value:10-30", 0.4},
        {"face_value:>=30", 0.2},        {"threshold:none", -0.8},
        {"threshold:<100", 0.6},         {"threshold:100-300", 1.0},
        {"threshold:>=300", 0.2},        {"scope:all", 0.2},
        {"scope:category", 0.6},         {"scope:tier", -0.5},
        {"scenario:holiday", 0.3},       {"scenario:member_day", 0.5},
        {"scenario:referral", -0.5},     {"scenario:new_member", -0.3}}},
      {-1.4,
       -1.4,
       0.35,
       0.85,
       20.0,
       {0.30, 0.35, 0.20, 0.10, 0.05},
       0.45,
       {0.30, 0.35, 0.25, 0.10},
       {{"kind:discount", 0.6},
        {"kind:threshold_discount", -0.4},
        {"kind:percent_off", 0.2},
        {"kind:gift", 1.0},
        {"kind:points", -1.0},
        {"kind:free_shipping", -1.0},
        {"kind:member_exclusive", 1.2},
        {"kind:service", 0.3},
        {"face_value:<10", -1.6},
        {"face_value:10-30", 0.1},
        {"face_value:>=30", 1.6},
        {"threshold:none", 0.6},
        {"threshold:100-300", -0.3},
        {"threshold:>=300", -0.8},
        {"scope:all", 0.3},
        {"scope:category", -0.2},
        {"scope:brand", 0.5},
        {"scope:tier", 0.2},
        {"scenario:regular", -0.2},
        {"scenario:holiday", 0.8},
        {"scenario:member_day", 0.2},
        {"scenario:referral", 0.3},
        {"scenario:new_member", -0.3}}},
      {-1.1,
       -1.6,
       0.30,
       0.90,
       12.0,
       {0.05, 0.20, 0.30, 0.25, 0.20},
       0.50,
       {0.10, 0.30, 0.40, 0.20},
       {{"kind:discount", -0.6},        {"kind:threshold_discount", -0.5},
        {"kind:percent_off", -0.3},     {"kind:gift", 0.2},
        {"kind:points", 2.0},           {"kind:free_shipping", -0.4},
        {"kind:member_exclusive", 0.8}, {"kind:service", 0.5},
        {"face_value:<10", 0.3},        {"face_value:10-30", 0.2},
        {"face_value:>=30", -0.3},      {"threshold:none", 0.6},
        {"threshold:<100", -0.2},       {"threshold:100-300", -0.5},
        {"threshold:>=300", -0.9},      {"scope:all", -0.2},
        {"scope:category", -0.4},       {"scope:tier", 1.0},
        {"scenario:regular", -0.3},     {"scenario:holiday", -0.2},
        {"scenario:member_day", 1.0},   {"scenario:new_member", -0.4}}},
      {-2.2,
       -3.2,
       0.20,
       0.70,
       7.0,
       {0.05, 0.15, 0.30, 0.30, 0.20},
       0.50,
       {0.05, 0.25, 0.40, 0.30},
       {{"kind:discount", -0.5},      {"kind:threshold_discount", -0.8},
        {"kind:percent_off", -0.6},   {"kind:gift", 0.2},
        {"kind:points", 0.3},         {"kind:member_exclusive", 0.5},
        {"kind:service", 0.8},        {"face_value:<10", -0.2},
        {"face_value:10-30", 0.2},    {"face_value:>=30", 0.1},
        {"threshold:none", 0.5},      {"threshold:<100", -0.1},
        {"threshold:100-300", -0.4},  {"threshold:>=300", -0.7},
        {"scope:category", -0.2},     {"scope:brand", 0.4},
        {"scope:tier", 0.6},          {"scenario:holiday", -0.3},
        {"scenario:member_day", 0.6}, {"scenario:referral", -0.3},
        {"scenario:new_member", -0.5}}},
      {-1.5,
       -0.9,
       0.30,
       0.80,
       16.0,
       {0.15, 0.25, 0.25, 0.20, 0.15},
       0.50,
       {0.60, 0.30, 0.08, 0.02},
       {{"kind:discount", 1.2},
        {"kind:threshold_discount", -0.6},
        {"kind:percent_off", 0.6},
        {"kind:gift", 0.5},
        {"kind:points", -1.0},
        {"kind:free_shipping", 0.2},
        {"kind:member_exclusive", -0.5},
        {"kind:service", -0.8},
        {"face_value:<10", -1.0},
        {"face_value:10-30", 0.3},
        {"face_value:>=30", 1.0},
        {"threshold:none", 1.0},
        {"threshold:100-300", -0.7},
        {"threshold:>=300", -1.3},
        {"scope:all", 0.6},
        {"scope:category", -0.3},
        {"scope:brand", -0.3},
        {"scope:tier", -0.5},
        {"scenario:regular", 0.2},
        {"scenario:holiday", 0.4},
        {"scenario:member_day", -0.3},
        {"scenario:referral", -0.2},
        {"scenario:new_member", -0.5}}},
      {-0.9,
       -1.1,
       0.35,
       0.85,
       15.0,
       {0.35, 0.35, 0.15, 0.10, 0.05},
       0.55,
       {0.90, 0.10, 0.0, 0.0},
       {{"kind:discount", 0.3},         {"kind:threshold_discount", -0.2},
        {"kind:percent_off", 0.2},      {"kind:gift", 1.2},
        {"kind:points", -0.6},          {"kind:free_shipping", 1.3},
        {"kind:member_exclusive", 0.3}, {"kind:service", -0.3},
        {"face_value:<10", 0.2},        {"face_value:10-30", 0.3},
        {"face_value:>=30", -0.3},      {"threshold:none", 0.8},
        {"threshold:<100", 0.2},        {"threshold:100-300", -0.6},
        {"threshold:>=300", -1.2},      {"scope:all", 0.5},
        {"scope:brand", -0.2},          {"scope:tier", -1.0},
        {"scenario:holiday", -0.2},     {"scenario:member_day", -0.3},
        {"scenario:referral", 0.6},     {"scenario:new_member", 1.5}}},
  };
  return kProfiles[static_cast<int>(a)];
}

template <std::size_t N>
int draw_index(Rng& rng, const double (&weights)[N]) {
  double cumulative[N];
  double total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    total += weights[i];
    cumulative[i] = total;
  }
  return static_cast<int>(rng.from_cumulative(cumulative, static_cast<std::uint32_t>(N)));
}

// Calendar effects shared by all members, per day from the start (past the end too).
struct Calendar {
  std::vector<double> season;
  std::vector<std::uint8_t> weekday;
  std::vector<std::uint8_t> member_day;
  std::vector<std::uint8_t> holiday;
};

inline Calendar make_calendar(const SimulatorParams& p) {
  static constexpr double kWeekday[7] = {0.90, 0.90, 0.95, 1.00, 1.10, 1.30, 1.20};  // Mon..Sun
  double mean = 0;
  for (double w : kWeekday) mean += w / 7.0;
  const int total_days = p.days + kFutureDays;
  Calendar c;
  c.season.resize(static_cast<std::size_t>(total_days));
  c.weekday.resize(c.season.size());
  c.member_day.resize(c.season.size());
  c.holiday.resize(c.season.size());
  const std::int64_t day0 = p.start_time / kSecondsPerDay;
  for (int d = 0; d < total_days; ++d) {
    const auto k = static_cast<std::size_t>(d);
    c.weekday[k] = static_cast<std::uint8_t>(weekday_from_days(day0 + d));
    c.member_day[k] = civil_from_days(day0 + d).day == p.member_day_of_month;
    c.holiday[k] = d >= p.holiday_start_day && d < p.holiday_start_day + p.holiday_days;
    c.season[k] =
        kWeekday[c.weekday[k]] / mean * (c.member_day[k] ? 1.6 : 1.0) * (c.holiday[k] ? 1.5 : 1.0);
  }
  return c;
}

}  // namespace detail::sim

PERKREC_INLINE Catalog simulated_catalog(const SimulatorParams& params) {
  using namespace detail::sim;
  params.validate();
  // A 48-benefit pattern: kinds interleaved in these proportions.
  static constexpr int kKindCounts[kNumBenefitKinds] = {7, 10, 6, 5, 7, 4, 5, 4};
  std::vector<BenefitKind> pattern;
  {
    int remaining[kNumBenefitKinds];
    std::copy(std::begin(kKindCounts), std::end(kKindCounts), remaining);
    bool any = true;
    while (any) {
      any = false;
      for (int k = 0; k < kNumBenefitKinds; ++k) {
        if (remaining[k] > 0) {
          pattern.push_back(static_cast<BenefitKind>(k));
          --remaining[k];
          any = true;
        }
      }
    }
  }
  static constexpr double kThresholdPairs[10][2] = {{50, 5},   {100, 12}, {150, 20},  {200, 30},
                                                    {300, 50}, {80, 10},  {500, 100}, {120, 15},
                                                    {250, 40}, {60, 8}};
  static constexpr double kDiscounts[7] = {3, 5, 8, 10, 15, 20, 30};
  static constexpr double kRates[6] = {0.05, 0.10, 0.12, 0.15, 0.20, 0.30};
  static constexpr double kPoints[7] = {1, 3, 5, 10, 20, 50, 8};
  static constexpr double kGifts[5] = {8, 15, 25, 40, 80};
  static constexpr double kShipping[4][2] = {{6, 0}, {8, 49}, {10, 99}, {12, 0}};
  static constexpr double kExclusive[5] = {10, 20, 35, 50, 100};
  static constexpr double kService[4] = {10, 20, 40, 60};
  static constexpr int kValidity[6] = {7, 14, 30, 3, 14, 30};
  static constexpr const char* kCategories[3] = {"apparel", "beauty", "grocery"};
  static constexpr const char* kBrands[2] = {"house_brand", "partner_brand"};
  static constexpr int kChannelCycle[6] = {0, 0, 1, 2, 0, 3};

  const Index n = params.n_benefits;
  const std::vector<std::string> categories =
      params.behavior ? behavior_categories(params.n_categories) : std::vector<std::string>{};
  int width = 2;
  for (Index x = n; x >= 100; x /= 10) ++width;
  int seen[kNumBenefitKinds] = {};
  std::vector<Benefit> benefits;
  benefits.reserve(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    Benefit b;
    std::string number = std::to_string(i + 1);
    b.id =
        "B" +
        std::string(static_cast<std::size_t>(std::max(0, width - static_cast<int>(number.size()))),
                    '0') +
        number;
    b.kind = pattern[static_cast<std::size_t>(i) % pattern.size()];
    const int j = seen[static_cast<int>(b.kind)]++;
    switch (b.kind) {
      case BenefitKind::threshold_discount:
        b.threshold = kThresholdPairs[j % 10][0];
        b.face_value = kThresholdPairs[j % 10][1];
        b.cost = b.face_value;
        break;
      case BenefitKind::discount:
        b.face_value = kDiscounts[j % 7];
        b.cost = b.face_value;
        break;
      case BenefitKind::percent_off:
        b.discount_rate = kRates[j % 6];
        b.cost = b.discount_rate * kTypicalBasket;
        break;
      case BenefitKind::points:
        b.face_value = kPoints[j % 7];
        b.cost = 0.6 * b.face_value;  // breakage: not every point is spent
        break;
      case BenefitKind::gift:
        b.face_value = kGifts[j % 5];
        b.cost = 0.5 * b.face_value;
        break;
      case BenefitKind::free_shipping:
        b.face_value = kShipping[j % 4][0];
        b.threshold = kShipping[j % 4][1];
        b.cost = 0.8 * b.face_value;
        break;
      case BenefitKind::member_exclusive:
        b.face_value = kExclusive[j % 5];
        b.cost = 0.35 * b.face_value;
        break;
      case BenefitKind::service:
        b.face_value = kService[j % 4];
        b.cost = 0.3 * b.face_value;
        break;
    }
    b.validity_days = kValidity[i % 6];
    if (b.kind == BenefitKind::member_exclusive && j % 2 == 0) {
      b.scope = Scope::tier;
      b.scope_value = "gold";
    } else if (params.behavior) {
      // With behaviour a quarter of the benefits apply to one category, a few to one brand.
      if (i % 4 == 3) {
        b.scope = Scope::category;
        b.scope_value = categories[static_cast<std::size_t>((i / 4) % params.n_categories)];
      } else if (i % 12 == 5) {
        b.scope = Scope::brand;
        b.scope_value = kBrands[(i / 12) % 2];
      }
    } else if (i % 12 == 3) {
      b.scope = Scope::category;
      b.scope_value = kCategories[(i / 12) % 3];
    } else if (i % 12 == 7) {
      b.scope = Scope::brand;
      b.scope_value = kBrands[(i / 12) % 2];
    }
    switch (i % 16) {
      case 2:
      case 9:
        b.scenarios = {"holiday"};
        b.tags = {"seasonal"};
        break;
      case 5:
      case 13:
        b.scenarios = {"member_day"};
        break;
      case 11:
        b.scenarios = {"referral"};
        break;
      case 15:
        b.scenarios = {"new_member"};
        b.tags = {"welcome"};
        break;
      default:
        b.scenarios = {"regular"};
        break;
    }
    b.channel = kChannels[kChannelCycle[i % 6]];
    if (i % 10 == 9) b.inventory = 1000 * (1 + (i / 10) % 3);
    benefits.push_back(std::move(b));
  }
  return Catalog(std::move(benefits));
}

namespace detail::sim {

struct Event {
  Timestamp time;
  std::uint8_t type;
  Index benefit;
  std::int16_t channel;
  float amount;
  float propensity;
  std::int32_t order;  // for organic redemptions: the order used, whose final amount is copied
};

inline int type_rank(std::uint8_t t) {
  // issued < viewed < claimed < ordered < redeemed < expired at equal times
  static constexpr int kRank[kNumEventTypes] = {0, 1, 2, 4, 5, 3};
  return kRank[t];
}

struct Order {
  Timestamp time;
  float amount;
  std::int16_t channel;
  Index benefit;             // first benefit redeemed on it, or -1
  Timestamp caused_at = -1;  // an induced order: when its benefit was claimed (views follow it)
};

// Chunk output: events of consecutive members, already in (member, time) order.
struct ChunkEvents {
  std::vector<Index> user;
  std::vector<Index> benefit;
  std::vector<std::uint8_t> type;
  std::vector<Timestamp> time;
  std::vector<std::int16_t> channel;
  std::vector<float> amount;
  std::vector<float> propensity;
  std::vector<std::uint8_t> control;
  // Behaviour: purchase lines and views (member, item, action, time, amount, basket).
  std::vector<Index> b_user;
  std::vector<Index> b_item;
  std::vector<std::int32_t> b_action;
  std::vector<Timestamp> b_time;
  std::vector<double> b_amount;
  std::vector<std::int64_t> b_basket;
};

// Everything shared by all members.
struct World {
  const SimulatorParams& params;
  const Catalog& catalog;
  BenefitDimensions dims;
  Calendar calendar;
  std::vector<std::vector<int>> benefit_dims;  // active dimensions per benefit
  std::vector<double> effective_value;
  std::vector<double> policy_weight;  // logging policy base weights
  std::vector<int> benefit_channel;
  std::vector<int> benefit_scenario_mask;  // bit per kScenarios entry
  std::vector<std::uint8_t> tier_scoped;
  std::vector<std::vector<std::pair<int, double>>> archetype_preferences;
  double archetype_cumulative[kNumArchetypes];
  // Behaviour only: category shares pi, each benefit's category (-1 = not category-scoped).
  std::vector<double> category_share;
  std::vector<int> benefit_category;
};

inline World make_world(const SimulatorParams& p, const Catalog& catalog) {
  World w{p,
          catalog,
          BenefitDimensions::for_catalog(catalog),
          make_calendar(p),
          {},
          {},
          {},
          {},
          {},
          {},
          {},
          {},
          {},
          {}};
  const Index nb = catalog.size();
  Rng rng(p.seed, 0x5EEDCA7ULL, 0);
  for (Index b = 0; b < nb; ++b) {
    const Benefit& ben = catalog[b];
    std::vector<int> active;
    w.dims.encode(ben, active);
    w.benefit_dims.push_back(std::move(active));
    w.effective_value.push_back(w.dims.effective_value(ben));
    w.policy_weight.push_back(std::exp(rng.normal(0.0, 0.5)));
    int channel = 0;
    for (int c = 0; c < kNumChannels; ++c) {
      if (ben.channel == kChannels[c]) channel = c;
    }
    w.benefit_channel.push_back(channel);
    int mask = 0;
    for (const auto& s : ben.scenarios) {
      for (int k = 0; k < 5; ++k) {
        if (s == kScenarios[k]) mask |= 1 << k;
      }
    }
    w.benefit_scenario_mask.push_back(mask == 0 ? 1 : mask);
    w.tier_scoped.push_back(ben.scope == Scope::tier);
  }
  for (int a = 0; a < kNumArchetypes; ++a) {
    std::vector<std::pair<int, double>> resolved;
    for (const auto& [name, lift] : profile(static_cast<Archetype>(a)).preferences) {
      const int d = w.dims.find(name);
      if (d >= 0) resolved.emplace_back(d, lift);
    }
    w.archetype_preferences.push_back(std::move(resolved));
  }
  double total = 0;
  for (int a = 0; a < kNumArchetypes; ++a) {
    total += p.archetype_mix[static_cast<std::size_t>(a)];
    w.archetype_cumulative[a] = total;
  }
  if (p.behavior) {
    w.category_share = behavior_category_shares(p.n_categories);
    const std::vector<std::string> names = behavior_categories(p.n_categories);
    for (Index b = 0; b < nb; ++b) {
      int c = -1;
      if (catalog[b].scope == Scope::category) {
        const auto it = std::find(names.begin(), names.end(), catalog[b].scope_value);
        if (it != names.end()) c = static_cast<int>(it - names.begin());
      }
      w.benefit_category.push_back(c);
    }
  }
  return w;
}

// Per-thread scratch reused across members.
struct Scratch {
  std::vector<double> rate;        // operational intensity per day
  std::vector<double> cumulative;  // operational time at the start of each day
  std::vector<Order> orders;
  std::vector<Event> events;
  std::vector<double> preference;
  std::vector<double> utility, claim_p, interest_p, induce_p, qualify_p, policy_cumulative;
  std::vector<Index> policy_benefit;
  std::vector<double> interest;  // behaviour: the member's category shares theta
  std::vector<double> interest_cumulative;
  int future_views = 0;  // behaviour: views before the end of the first organic order after it
};

inline double hour_draw(Rng& rng, double preferred_hour) {
  if (rng.bernoulli(0.8)) {
    double h = std::fmod(preferred_hour + rng.normal(0.0, 1.25), 24.0);
    return h < 0 ? h + 24.0 : h;
  }
  return rng.uniform(7.0, 23.0);
}

// Real day (fractional) at which operational time `tau` is reached, searching from day `from`.
inline double day_at(const Scratch& s, double tau, int from = 0) {
  const int n = static_cast<int>(s.rate.size());
  int d = std::max(0, from);
  while (d < n && s.cumulative[static_cast<std::size_t>(d) + 1] <= tau) ++d;
  if (d >= n) {
    // Past the horizon: extrapolate at the last rate.
    const double last_rate = std::max(1e-9, s.rate.back());
    return n + (tau - s.cumulative.back()) / last_rate;
  }
  const double r = s.rate[static_cast<std::size_t>(d)];
  return d + (r > 0 ? (tau - s.cumulative[static_cast<std::size_t>(d)]) / r : 0.0);
}

inline double gamma_survival(double shape, double scale, double x) {
  return 1.0 - regularized_gamma_p(shape, x / scale);
}

// Log-normal sigma of a member's order amounts (around their median basket).
inline constexpr double kSigma = 0.45;

// Who a member is: the draws of simulate_member's first stage, read by the later ones.
struct Member {
  Archetype archetype = Archetype::dormant;
  bool control = false;
  int age = 0;
  int gender = 0;
  int tier = 0;
  int region = 0;
  int signup_day = 0;
  Timestamp signup_time = 0;
  double preferred_hour = 0;
  int preferred_weekday = 0;
  double cycle = 0;
  double shape = 0;
  double scale = 0;
  double basket = 0;
  double mu = 0;
  int preferred_channel = 0;
  double app_order_share = 0;
  double claim_base = 0;
  double induce_base = 0;
  double stretch = 0;
  double use = 0;
  int lapse_day = 0;
  double view_p[kNumChannels] = {};  // per channel: P(views an issued benefit)
};

// Stage 1 of simulate_member: who the member is (archetype, attributes, rhythm, basket,
// channels, response bases), drawn from the member's stream in a fixed order.
inline Member draw_member(const World& w, Rng& rng) {
  const SimulatorParams& p = w.params;
  const Index nb = w.catalog.size();
  const int days = p.days;
  const int horizon = days + kFutureDays;
  const Timestamp start = p.start_time;
  const Timestamp end = start + static_cast<Timestamp>(days) * kSecondsPerDay;
  (void)nb;
  (void)horizon;
  (void)end;
  Member m;
  const auto archetype =
      static_cast<Archetype>(rng.from_cumulative(w.archetype_cumulative, kNumArchetypes));
  const ArchetypeProfile& prof = profile(archetype);
  const bool control = rng.bernoulli(p.control_fraction);
  const int age = draw_index(rng, prof.age);
  const int gender = rng.bernoulli(prof.female) ? 0 : 1;
  const int tier = draw_index(rng, prof.tier);
  const int region = static_cast<int>(rng.below(5));
  int signup_day = 0;
  Timestamp signup_time;
  if (archetype == Archetype::new_member) {
    const int lo = std::max(1, days - 90), hi = std::max(lo + 1, days - 10);
    signup_day = lo + static_cast<int>(rng.below(static_cast<std::uint32_t>(hi - lo)));
    signup_time = start + static_cast<Timestamp>(signup_day) * kSecondsPerDay +
                  static_cast<Timestamp>(rng.uniform(8.0, 22.0) * kSecondsPerHour);
  } else {
    signup_time = start - static_cast<Timestamp>(rng.uniform(60.0, 1500.0) * kSecondsPerDay);
  }
  static constexpr double kModes[4] = {9.5, 12.5, 19.5, 21.5};
  static constexpr double kModeWeights[4] = {0.2, 0.3, 0.35, 0.15};
  const double preferred_hour =
      std::clamp(kModes[draw_index(rng, kModeWeights)] + rng.normal(0.0, 1.0), 7.0, 23.0);
  const int preferred_weekday = rng.bernoulli(0.7) ? static_cast<int>(rng.below(7)) : -1;
  const double cycle = std::clamp(prof.cycle_days * std::exp(rng.normal(0.0, 0.35)), 3.0, 60.0);
  double shape = std::clamp(std::exp(rng.normal(std::log(3.0), 0.5)), 1.0, 12.0);
  if (archetype == Archetype::discount_indifferent_loyal) shape = std::min(12.0, shape * 1.5);
  const double scale = cycle / shape;
  double basket = 40.0 * (1.0 + 0.25 * tier) * std::exp(rng.normal(0.0, 0.3));
  if (archetype == Archetype::high_face_value_seeker) basket *= 1.2;
  if (archetype == Archetype::threshold_discount_sensitive) basket *= 0.9;
  const double mu = std::log(basket);
  static constexpr double kAppShare[5] = {0.75, 0.65, 0.5, 0.35, 0.25};
  static constexpr double kSmsShare[5] = {0.10, 0.15, 0.20, 0.30, 0.35};
  static constexpr double kEmailShare[5] = {0.10, 0.15, 0.20, 0.25, 0.30};
  const double channel_weights[4] = {
      kAppShare[age], kSmsShare[age], kEmailShare[age],
      std::max(0.0, 1.0 - kAppShare[age] - kSmsShare[age] - kEmailShare[age])};
  const int preferred_channel = draw_index(rng, channel_weights);
  double view_p[kNumChannels];
  for (int c = 0; c < kNumChannels; ++c) {
    view_p[c] = c == preferred_channel ? rng.uniform(0.65, 0.85) : rng.uniform(0.15, 0.35);
    if (archetype == Archetype::discount_indifferent_loyal) view_p[c] *= 0.8;
  }
  const double app_order_share = kAppShare[age];
  const double claim_base = prof.claim_base + rng.normal(0.0, 0.3);
  const double induce_base = prof.induce_base + rng.normal(0.0, 0.3);
  const double stretch = prof.stretch;
  const double use = prof.use;
  int lapse_day = -1;
  if (archetype == Archetype::dormant) {
    const int hi = std::max(16, std::min(100, days - 30));
    lapse_day = 15 + static_cast<int>(rng.below(static_cast<std::uint32_t>(hi - 15 + 1)));
  }

  m.archetype = archetype;
  m.control = control;
  m.age = age;
  m.gender = gender;
  m.tier = tier;
  m.region = region;
  m.signup_day = signup_day;
  m.signup_time = signup_time;
  m.preferred_hour = preferred_hour;
  m.preferred_weekday = preferred_weekday;
  m.cycle = cycle;
  m.shape = shape;
  m.scale = scale;
  m.basket = basket;
  m.mu = mu;
  m.preferred_channel = preferred_channel;
  m.app_order_share = app_order_share;
  m.claim_base = claim_base;
  m.induce_base = induce_base;
  m.stretch = stretch;
  m.use = use;
  m.lapse_day = lapse_day;
  for (int c = 0; c < kNumChannels; ++c) m.view_p[c] = view_p[c];
  return m;
}

// Stage 2: the planted preferences (archetype lifts, individual noise, preferred-channel
// lift) and, per benefit, the utility and the claim, view-interest, inducement and
// threshold-qualifying probabilities (into s).
inline void member_probabilities(const World& w, const Member& m, Rng& rng, Scratch& s) {
  const SimulatorParams& p = w.params;
  const Index nb = w.catalog.size();
  const Archetype archetype = m.archetype;
  const double basket = m.basket;
  const double mu = m.mu;
  const int preferred_channel = m.preferred_channel;
  const double claim_base = m.claim_base;
  const double induce_base = m.induce_base;
  const double stretch = m.stretch;
  // Planted preferences: archetype lifts + individual noise + a preferred-channel lift.
  const int n_dims = w.dims.size();
  s.preference.assign(static_cast<std::size_t>(n_dims), 0.0);
  for (const auto& [d, lift] : w.archetype_preferences[static_cast<int>(archetype)]) {
    s.preference[static_cast<std::size_t>(d)] += kPreferenceScale * lift;
  }
  for (int d = 0; d < n_dims; ++d)
    s.preference[static_cast<std::size_t>(d)] += rng.normal(0.0, p.preference_noise);
  {
    const int d = w.dims.find(std::string("channel:") + kChannels[preferred_channel]);
    if (d >= 0) s.preference[static_cast<std::size_t>(d)] += kChannelLift;
  }
  s.utility.resize(static_cast<std::size_t>(nb));
  s.claim_p.resize(static_cast<std::size_t>(nb));
  s.induce_p.resize(static_cast<std::size_t>(nb));
  s.qualify_p.resize(static_cast<std::size_t>(nb));
  s.interest_p.resize(static_cast<std::size_t>(nb));
  for (Index b = 0; b < nb; ++b) {
    const auto k = static_cast<std::size_t>(b);
    double util = 0.35 * std::log1p(w.effective_value[k] / 10.0);
    for (int d : w.benefit_dims[k]) util += s.preference[static_cast<std::size_t>(d)];
    if (p.behavior && w.benefit_category[k] >= 0) {
      const auto c = static_cast<std::size_t>(w.benefit_category[k]);
      util += p.interest_effect * std::clamp(std::log(s.interest[c] / w.category_share[c]),
                                             -kInterestLogClamp, kInterestLogClamp);
    }
    s.utility[k] = util;
    s.claim_p[k] = sigmoid(claim_base + util);
    s.interest_p[k] = sigmoid(kViewInterestBase + kViewInterestSlope * util);
    s.induce_p[k] =
        sigmoid(induce_base + 0.8 * util + 0.5 * std::min(1.0, w.effective_value[k] / basket));
    const double threshold = w.catalog[b].threshold;
    s.qualify_p[k] = threshold > 0
                         ? 1.0 - (1.0 - stretch) * normal_cdf((std::log(threshold) - mu) / kSigma)
                         : 1.0;
  }
}

// Stage 3's result: how many of s.orders are organic, and the renewal state at the end.
struct OrganicOrders {
  std::size_t count = 0;
  double tau_end = 0.0;         // operational time at the end of the period
  double elapsed_at_end = 0.0;  // operational time since the last renewal at the end
  double tau_next = 0.0;        // operational time of the first organic order after the end
};

// Stage 3: organic orders, a gamma renewal process in operational time (season, weekday,
// lapse, signup), into s.orders sorted by time.
inline OrganicOrders organic_orders(const World& w, const Member& m, Rng& rng, Scratch& s) {
  const SimulatorParams& p = w.params;
  const Index nb = w.catalog.size();
  const int days = p.days;
  const int horizon = days + kFutureDays;
  const Timestamp start = p.start_time;
  (void)nb;
  const Archetype archetype = m.archetype;
  const int signup_day = m.signup_day;
  const Timestamp signup_time = m.signup_time;
  const double preferred_hour = m.preferred_hour;
  const int preferred_weekday = m.preferred_weekday;
  const double shape = m.shape;
  const double scale = m.scale;
  const double mu = m.mu;
  const double app_order_share = m.app_order_share;
  const int lapse_day = m.lapse_day;
  // --- organic orders: gamma renewal in operational time ----------------------------------
  s.rate.resize(static_cast<std::size_t>(horizon));
  s.cumulative.resize(static_cast<std::size_t>(horizon) + 1);
  const double weekday_norm = preferred_weekday >= 0 ? 1.0 + 0.8 / 7.0 : 1.0;
  s.cumulative[0] = 0.0;
  for (int d = 0; d < horizon; ++d) {
    const auto k = static_cast<std::size_t>(d);
    double r = w.calendar.season[k];
    if (preferred_weekday >= 0) {
      r *= (w.calendar.weekday[k] == preferred_weekday ? 1.8 : 1.0) / weekday_norm;
    }
    if (lapse_day >= 0 && d >= lapse_day) r *= kLapsedRate;
    if (d < signup_day) r = 0.0;
    s.rate[k] = r;
    s.cumulative[k + 1] = s.cumulative[k] + r;
  }
  const double tau_begin = s.cumulative[static_cast<std::size_t>(signup_day)];
  const double tau_end = s.cumulative[static_cast<std::size_t>(days)];
  double tau_last, tau_next;
  if (archetype == Archetype::new_member) {
    tau_last = tau_begin;  // joining acts as a renewal
    tau_next = tau_begin + 0.5 * scale * rng.gamma(shape);
  } else {
    // Stationary start: the first gap is length-biased and the start falls uniformly in it.
    const double gap = scale * rng.gamma(shape + 1.0);
    const double into = rng.uniform() * gap;
    tau_last = tau_begin - into;
    tau_next = tau_begin - into + gap;
  }
  s.orders.clear();
  int search_day = 0;
  while (tau_next < tau_end) {
    const double real_day = day_at(s, tau_next, search_day);
    const int day = std::min(days - 1, static_cast<int>(real_day));
    search_day = day;
    const double hour = hour_draw(rng, preferred_hour);
    const Timestamp t = start + static_cast<Timestamp>(day) * kSecondsPerDay +
                        static_cast<Timestamp>(hour * kSecondsPerHour);
    const auto amount = static_cast<float>(std::exp(rng.normal(mu, kSigma)));
    const std::int16_t channel = rng.bernoulli(app_order_share) ? 0 : kStoreChannel;
    if (t >= signup_time) s.orders.push_back(Order{t, amount, channel, kNoBenefit});
    tau_last = tau_next;
    tau_next += scale * rng.gamma(shape);
  }
  std::sort(s.orders.begin(), s.orders.end(),
            [](const Order& a, const Order& b) { return a.time < b.time; });
  OrganicOrders out;
  out.count = s.orders.size();
  out.tau_end = tau_end;
  out.elapsed_at_end = tau_end - tau_last;
  out.tau_next = tau_next;
  return out;
}

// Stage 4: the logging policy issues benefits, and the member views, claims and redeems
// them (induced orders join s.orders, organic ones may carry a benefit); events into s.events.
inline void issue_benefits(const World& w, const Member& m, std::size_t organic_count, Rng& rng,
                           Scratch& s) {
  const SimulatorParams& p = w.params;
  const Index nb = w.catalog.size();
  const int days = p.days;
  const Timestamp start = p.start_time;
  const Timestamp end = start + static_cast<Timestamp>(days) * kSecondsPerDay;
  const Archetype archetype = m.archetype;
  const bool control = m.control;
  const int tier = m.tier;
  const int signup_day = m.signup_day;
  const Timestamp signup_time = m.signup_time;
  const double preferred_hour = m.preferred_hour;
  const double mu = m.mu;
  const double app_order_share = m.app_order_share;
  const double stretch = m.stretch;
  const double use = m.use;
  const int lapse_day = m.lapse_day;
  const double* view_p = m.view_p;
  // --- the logging policy issues benefits ---------------------------------------------------
  s.events.clear();
  auto emit = [&](Timestamp t, EventType type, Index b, int channel, float amount, float propensity,
                  std::int32_t order = -1) {
    if (t < end) {
      s.events.push_back(Event{t, static_cast<std::uint8_t>(type), b,
                               static_cast<std::int16_t>(channel), amount, propensity, order});
    }
  };
  if (!control && p.issues_per_week > 0) {
    for (int d = signup_day; d < days; ++d) {
      const auto k = static_cast<std::size_t>(d);
      const double send_p =
          std::min(1.0, p.issues_per_week / 7.0 * (w.calendar.member_day[k] ? 2.0 : 1.0) *
                            (w.calendar.holiday[k] ? 1.5 : 1.0));
      if (!rng.bernoulli(send_p)) continue;
      const Timestamp day_start = start + static_cast<Timestamp>(d) * kSecondsPerDay;
      const bool is_new =
          archetype == Archetype::new_member && day_start - signup_time < 30 * kSecondsPerDay;
      int allowed = 1 | 8;  // regular and referral always
      if (w.calendar.holiday[k]) allowed |= 2;
      if (w.calendar.member_day[k]) allowed |= 4;
      if (is_new) allowed |= 16;
      s.policy_cumulative.clear();
      s.policy_benefit.clear();
      double total = 0;
      for (Index b = 0; b < nb; ++b) {
        const auto kb = static_cast<std::size_t>(b);
        if ((w.benefit_scenario_mask[kb] & allowed) == 0) continue;
        if (w.tier_scoped[kb] && tier < 2) continue;
        double weight = w.policy_weight[kb];
        if (w.benefit_scenario_mask[kb] & 8) weight *= 0.3;          // referral: rarer
        if ((w.benefit_scenario_mask[kb] & 22) != 0) weight *= 3.0;  // occasion benefits first
        total += weight;
        s.policy_cumulative.push_back(total);
        s.policy_benefit.push_back(b);
      }
      if (s.policy_benefit.empty()) continue;
      const std::uint32_t pick = rng.from_cumulative(
          s.policy_cumulative.data(), static_cast<std::uint32_t>(s.policy_benefit.size()));
      const Index b = s.policy_benefit[pick];
      const auto kb = static_cast<std::size_t>(b);
      const double chosen_weight =
          s.policy_cumulative[pick] - (pick > 0 ? s.policy_cumulative[pick - 1] : 0.0);
      const auto propensity = static_cast<float>(std::max(1e-6, send_p * chosen_weight / total));
      const int channel = w.benefit_channel[kb];
      const Timestamp issued = day_start + static_cast<Timestamp>(kSendHour * kSecondsPerHour) +
                               static_cast<Timestamp>(rng.below(1800));
      if (issued < signup_time) continue;  // joined later that day
      const Timestamp expiry =
          issued + static_cast<Timestamp>(w.catalog[b].validity_days) * kSecondsPerDay;
      emit(issued, EventType::issued, b, channel, 0.0f, propensity);
      const bool lapsed = lapse_day >= 0 && d >= lapse_day;
      if (!rng.bernoulli(view_p[channel] * (lapsed ? 0.5 : 1.0) * s.interest_p[kb])) continue;
      Timestamp viewed;
      if (rng.bernoulli(0.35)) {
        viewed = issued + 60 + static_cast<Timestamp>(rng.below(3600));
      } else {
        const double hour = hour_draw(rng, preferred_hour);
        int view_day = d + (hour > kSendHour + 0.5 ? 0 : 1) + (rng.bernoulli(0.3) ? 1 : 0);
        viewed = start + static_cast<Timestamp>(view_day) * kSecondsPerDay +
                 static_cast<Timestamp>(hour * kSecondsPerHour);
        if (viewed <= issued) viewed = issued + 60;
      }
      if (viewed >= expiry) continue;
      emit(viewed, EventType::viewed, b, channel, 0.0f, 1.0f);
      if (!rng.bernoulli(s.claim_p[kb])) continue;
      const Timestamp claimed = std::min<Timestamp>(
          expiry - 1, viewed + 1 + static_cast<Timestamp>(300.0 * rng.exponential()));
      emit(claimed, EventType::claimed, b, channel, 0.0f, 1.0f);
      const double threshold = w.catalog[b].threshold;
      bool redeemed = false;
      if (rng.bernoulli(s.induce_p[kb])) {
        // The benefit triggers an extra purchase inside its validity window.
        const double v = rng.uniform();
        Timestamp t =
            claimed + static_cast<Timestamp>(v * v * 0.8 * static_cast<double>(expiry - claimed));
        const Timestamp day_floor = t - ((t - start) % kSecondsPerDay);
        const Timestamp at_hour =
            day_floor + static_cast<Timestamp>(hour_draw(rng, preferred_hour) * kSecondsPerHour);
        if (at_hour >= claimed && at_hour < expiry) t = at_hour;
        float amount = static_cast<float>(std::exp(rng.normal(mu, kSigma)));
        if (threshold > 0 && amount < threshold) {
          amount = static_cast<float>(threshold * (1.0 + 0.1 * rng.uniform()));
        }
        const std::int16_t ch = rng.bernoulli(app_order_share) ? 0 : kStoreChannel;
        s.orders.push_back(Order{t, amount, ch, b, claimed});
        emit(t, EventType::redeemed, b, ch, amount, 1.0f);
        redeemed = t < end;
      } else {
        // Otherwise the member's next organic order may use it.
        auto first = std::lower_bound(
            s.orders.begin(), s.orders.begin() + static_cast<std::ptrdiff_t>(organic_count),
            claimed, [](const Order& o, Timestamp t) { return o.time < t; });
        if (first != s.orders.begin() + static_cast<std::ptrdiff_t>(organic_count) &&
            first->time < expiry) {
          Order& o = *first;
          bool qualifies = threshold <= 0 || o.amount >= threshold;
          if (!qualifies && rng.bernoulli(stretch)) {
            o.amount = static_cast<float>(threshold * (1.0 + 0.1 * rng.uniform()));
            qualifies = true;
          }
          if (qualifies && rng.bernoulli(use)) {
            if (o.benefit == kNoBenefit) o.benefit = b;
            // The redeemed event's amount is filled from the final order below.
            emit(o.time, EventType::redeemed, b, o.channel, 0.0f, 1.0f,
                 static_cast<std::int32_t>(first - s.orders.begin()));
            redeemed = o.time < end;
          }
        }
      }
      if (!redeemed) emit(expiry, EventType::expired, b, channel, 0.0f, 1.0f);
    }
  }
}

// Stage 5: the orders become events, all sorted by time and type, appended to out.
inline void emit_events(const Member& m, Index u, Timestamp end, Scratch& s, ChunkEvents& out) {
  const bool control = m.control;
  for (const Order& o : s.orders) {
    if (o.time < end) {
      s.events.push_back(Event{o.time, static_cast<std::uint8_t>(EventType::ordered), o.benefit,
                               o.channel, o.amount, 1.0f, -1});
    }
  }
  std::stable_sort(s.events.begin(), s.events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    return type_rank(a.type) < type_rank(b.type);
  });
  // Organic redemptions carry the amount of the order they were used on (after stretching).
  for (Event& e : s.events) {
    if (e.order >= 0) e.amount = s.orders[static_cast<std::size_t>(e.order)].amount;
  }
  for (const Event& e : s.events) {
    out.user.push_back(u);
    out.benefit.push_back(e.benefit);
    out.type.push_back(e.type);
    out.time.push_back(e.time);
    out.channel.push_back(e.channel);
    out.amount.push_back(e.amount);
    out.propensity.push_back(e.propensity);
    out.control.push_back(control ? 1 : 0);
  }
}

// Behaviour, before stage 2: the member's category interests theta ~ Dirichlet(alpha pi), from
// the member's behaviour stream (so the main stream's draws do not change).
inline void draw_interests(const World& w, Rng& brng, Scratch& s) {
  const SimulatorParams& p = w.params;
  const auto nc = static_cast<std::size_t>(p.n_categories);
  s.interest.resize(nc);
  double total = 0;
  for (std::size_t c = 0; c < nc; ++c) {
    // A floor keeps log(theta / pi) finite for tiny shapes.
    s.interest[c] = std::max(1e-300, brng.gamma(p.interest_concentration * w.category_share[c]));
    total += s.interest[c];
  }
  s.interest_cumulative.resize(nc);
  double running = 0;
  for (std::size_t c = 0; c < nc; ++c) {
    s.interest[c] = std::max(s.interest[c] / total, 1e-12);
    running += s.interest[c];
    s.interest_cumulative[c] = running;
  }
}

// Behaviour, after stage 5: every order before the end becomes a basket of purchase lines and
// is preceded by views (see simulator.hpp), appended to out's behaviour columns.
inline void behavior_events(const World& w, const Member& m, const OrganicOrders& organic, Index u,
                            Timestamp end, Rng& brng, Scratch& s, ChunkEvents& out) {
  const SimulatorParams& p = w.params;
  const Timestamp first = std::max(p.start_time, m.signup_time);
  const auto nc = static_cast<std::uint32_t>(p.n_categories);
  auto draw_item = [&](int category) {
    if (category < 0) {
      category = static_cast<int>(brng.from_cumulative(s.interest_cumulative.data(), nc));
    }
    return static_cast<Index>(category * kItemsPerCategory +
                              static_cast<int>(brng.below(kItemsPerCategory)));
  };
  auto push = [&](Index item, std::int32_t action, Timestamp t, double amount,
                  std::int64_t basket) {
    out.b_user.push_back(u);
    out.b_item.push_back(item);
    out.b_action.push_back(action);
    out.b_time.push_back(t);
    out.b_amount.push_back(amount);
    out.b_basket.push_back(basket);
  };
  // Views come before their order, so an order after the end still leaves the views that fall
  // before it in the log (as a real log cut at any time holds them); returns how many it left.
  // An induced order's views follow the claim that caused it (none before the benefit existed).
  auto views_before = [&](Timestamp order_time, Rng& timing, Timestamp caused_at = -1) {
    int left = 0;
    const double window = caused_at >= 0 ? std::min(kViewWindowDays * kSecondsPerDay,
                                                    static_cast<double>(order_time - caused_at))
                                         : kViewWindowDays * kSecondsPerDay;
    const int views = static_cast<int>(timing.poisson(p.views_per_order));
    for (int v = 0; v < views; ++v) {
      const auto before = static_cast<Timestamp>(timing.uniform() * window);
      const Index item = draw_item(-1);
      const Timestamp t = order_time - before;
      if (t >= first && t < end) {
        push(item, 1, t, 0.0, -1);
        ++left;
      }
    }
    return left;
  };
  for (std::size_t k = 0; k < s.orders.size(); ++k) {
    const Order& o = s.orders[k];
    views_before(o.time, brng, o.caused_at);
    if (o.time >= end) continue;
    const int lines = 1 + static_cast<int>(brng.poisson(p.lines_per_order - 1.0));
    const int scoped =
        o.benefit >= 0 ? w.benefit_category[static_cast<std::size_t>(o.benefit)] : -1;
    const std::int64_t basket =
        static_cast<std::int64_t>(u) * (std::int64_t{1} << 20) + static_cast<std::int64_t>(k);
    const double share = static_cast<double>(o.amount) / lines;
    for (int l = 0; l < lines; ++l) push(draw_item(l == 0 ? scoped : -1), 0, o.time, share, basket);
  }
  // The member's first organic order after the end (the renewal the history stopped at): its
  // views before the end are in the log, and the truth conditions on how many there are. Its
  // hour, view count and view times come from a stream of their own, so the truth does not
  // depend on the interests (only the viewed items do).
  Rng next_rng(p.seed, static_cast<std::uint64_t>(u) + 1, 3);
  const double real_day = day_at(s, organic.tau_next, w.params.days);
  const Timestamp next_order =
      p.start_time + static_cast<Timestamp>(std::floor(real_day)) * kSecondsPerDay +
      static_cast<Timestamp>(hour_draw(next_rng, m.preferred_hour) * kSecondsPerHour);
  s.future_views = views_before(next_order, next_rng);
}

// Stage 6: the member's ground truth at the end of the period and their attributes.
inline void member_truth(const World& w, const Member& m, Index u, const OrganicOrders& organic,
                         const Scratch& s, SimulationTruth& truth,
                         std::vector<std::int32_t>& attributes, std::vector<double>& signup) {
  const SimulatorParams& p = w.params;
  const Index nb = w.catalog.size();
  const int days = p.days;
  const int horizon = days + kFutureDays;
  const Timestamp start = p.start_time;
  const Archetype archetype = m.archetype;
  const bool control = m.control;
  const int age = m.age;
  const int gender = m.gender;
  const int tier = m.tier;
  const int region = m.region;
  const Timestamp signup_time = m.signup_time;
  const double preferred_hour = m.preferred_hour;
  const int preferred_weekday = m.preferred_weekday;
  const double cycle = m.cycle;
  const double shape = m.shape;
  const double scale = m.scale;
  const double basket = m.basket;
  const double use = m.use;
  const int lapse_day = m.lapse_day;
  const double* view_p = m.view_p;
  const int n_dims = w.dims.size();
  const double tau_end = organic.tau_end;
  const double elapsed_at_end = organic.elapsed_at_end;
  // --- ground truth at the end of the period ------------------------------------------------
  const auto row = static_cast<std::size_t>(u);
  truth.archetype[row] = static_cast<std::uint8_t>(archetype);
  for (int d = 0; d < n_dims; ++d) {
    truth.preference_lift[row * static_cast<std::size_t>(n_dims) + static_cast<std::size_t>(d)] =
        static_cast<float>(s.preference[static_cast<std::size_t>(d)]);
  }
  const bool lapsed_at_end = lapse_day >= 0 && days >= lapse_day;
  const double survival_now = gamma_survival(shape, scale, elapsed_at_end);
  // P(the next organic order falls in the first `ahead` days after the end | the time since
  // the last one).
  auto organic_within = [&](int ahead) {
    const double window =
        s.cumulative[static_cast<std::size_t>(std::min(horizon, days + ahead))] - tau_end;
    double q;
    if (survival_now > 1e-12) {
      q = (survival_now - gamma_survival(shape, scale, elapsed_at_end + window)) / survival_now;
    } else {
      q = 1.0 - std::exp(-window / scale);
    }
    return std::clamp(q, 0.0, 1.0);
  };
  // With behaviour, the log holds the views the next organic order left before the end (one
  // in the kViewWindowDays before it, Poisson(views_per_order) in all), so the truth is
  // conditioned on their number: P(day D of the next order | elapsed, s.future_views views).
  // Orders kViewWindowDays or more after the end leave none; an order on day D < 3 at hour h
  // leaves Poisson(views_per_order x (3 - D - h / 24) / 3), averaged over the member's hours.
  constexpr int kNear = static_cast<int>(kViewWindowDays);
  double near_weight[kNear] = {};
  double far_weight = 0.0;
  const bool view_evidence = p.behavior && p.views_per_order > 0;
  if (view_evidence) {
    const int k_views = s.future_views;
    double log_factorial = 0.0;
    for (int i = 2; i <= k_views; ++i) log_factorial += std::log(static_cast<double>(i));
    constexpr int kHours = 96;
    constexpr double kSqrtTwoPi = 2.5066282746310002;
    double hour_density[kHours], density_sum = 0.0;
    for (int j = 0; j < kHours; ++j) {
      const double h = (j + 0.5) * 24.0 / kHours;
      double d = 0.0;
      for (int wrap = -1; wrap <= 1; ++wrap) {
        const double z = (h - preferred_hour + 24.0 * wrap) / 1.25;
        d += 0.8 * std::exp(-0.5 * z * z) / (1.25 * kSqrtTwoPi);
      }
      if (h >= 7.0 && h < 23.0) d += 0.2 / 16.0;
      hour_density[j] = d;
      density_sum += d;
    }
    double below = 0.0;
    for (int day = 0; day < kNear; ++day) {
      const double upto = organic_within(day + 1);
      double likelihood = 0.0;
      for (int j = 0; j < kHours; ++j) {
        const double x = day + (j + 0.5) / kHours;
        const double mean = p.views_per_order * (kViewWindowDays - x) / kViewWindowDays;
        likelihood += hour_density[j] / density_sum *
                      std::exp(k_views * std::log(mean) - mean - log_factorial);
      }
      near_weight[day] = (upto - below) * likelihood;
      below = upto;
    }
    far_weight = k_views == 0 ? 1.0 - below : 0.0;
  }
  double evidence = far_weight;
  for (double v : near_weight) evidence += v;
  for (Index b = 0; b < nb; ++b) {
    const auto k = static_cast<std::size_t>(b);
    const int validity = w.catalog[b].validity_days;
    double p_organic;
    if (!view_evidence) {
      p_organic = organic_within(validity);
    } else {
      double inside = 0.0;
      for (int day = 0; day < std::min(validity, kNear); ++day) inside += near_weight[day];
      if (validity > kNear && far_weight > 0) {
        inside += organic_within(validity) - organic_within(kNear);
      }
      p_organic = evidence > 0 ? std::clamp(inside / evidence, 0.0, 1.0) : organic_within(validity);
    }
    const double claim =
        view_p[w.benefit_channel[k]] * (lapsed_at_end ? 0.5 : 1.0) * s.interest_p[k] * s.claim_p[k];
    const double r = s.induce_p[k];
    const std::size_t cell = row * static_cast<std::size_t>(nb) + k;
    truth.claim_probability[cell] = static_cast<float>(claim);
    truth.redemption_probability[cell] =
        static_cast<float>(claim * (r + (1.0 - r) * p_organic * s.qualify_p[k] * use));
    truth.incremental_probability[cell] = static_cast<float>(claim * r * (1.0 - p_organic));
  }
  truth.preferred_hour[row] = static_cast<float>(preferred_hour);
  truth.preferred_weekday[row] = static_cast<std::int8_t>(preferred_weekday);
  truth.cycle_days[row] = static_cast<float>(cycle);
  truth.cycle_shape[row] = static_cast<float>(shape);
  truth.basket_median[row] = static_cast<float>(basket);
  truth.signup_time[row] = signup_time;
  truth.lapse_time[row] =
      lapse_day >= 0 ? start + static_cast<Timestamp>(lapse_day) * kSecondsPerDay : -1;
  truth.control[row] = control ? 1 : 0;
  {
    // Mean residual life of a gamma renewal: E[(X - e)+] / P(X > e), with
    // E[(X - e)+] = k θ Q(k + 1, e/θ) - e Q(k, e/θ).
    const double q_k = survival_now;
    const double q_k1 = gamma_survival(shape + 1.0, scale, elapsed_at_end);
    double residual = q_k > 1e-12 ? (shape * scale * q_k1 - elapsed_at_end * q_k) / q_k : scale;
    residual = std::max(residual, 0.0);
    const double next_day = day_at(s, tau_end + residual, days);
    truth.expected_next_order_time[row] = start + static_cast<Timestamp>(next_day * kSecondsPerDay);
  }
  if (p.behavior) {
    const auto nc = static_cast<std::size_t>(p.n_categories);
    for (std::size_t c = 0; c < nc; ++c)
      truth.interest[row * nc + c] = static_cast<float>(s.interest[c]);
  }
  attributes[row * 4 + 0] = age;
  attributes[row * 4 + 1] = gender;
  attributes[row * 4 + 2] = tier;
  attributes[row * 4 + 3] = region;
  signup[row] = static_cast<double>(signup_time);
}

// One member's history and truth, in stages: draw_member, member_probabilities,
// organic_orders, issue_benefits, emit_events, member_truth. Every draw comes from the
// member's own stream, in the same order as ever (the simulator is a benchmark: its output
// must not change).
inline void simulate_member(const World& w, Index u, Scratch& s, ChunkEvents& out,
                            SimulationTruth& truth, std::vector<std::int32_t>& attributes,
                            std::vector<double>& signup) {
  const SimulatorParams& p = w.params;
  const Timestamp end = p.start_time + static_cast<Timestamp>(p.days) * kSecondsPerDay;
  Rng rng(p.seed, static_cast<std::uint64_t>(u) + 1, 1);
  Rng brng(p.seed, static_cast<std::uint64_t>(u) + 1, 2);  // behaviour's own stream
  const Member m = draw_member(w, rng);
  if (p.behavior) draw_interests(w, brng, s);
  member_probabilities(w, m, rng, s);
  const OrganicOrders organic = organic_orders(w, m, rng, s);
  issue_benefits(w, m, organic.count, rng, s);
  emit_events(m, u, end, s, out);
  if (p.behavior) behavior_events(w, m, organic, u, end, brng, s, out);
  member_truth(w, m, u, organic, s, truth, attributes, signup);
}

}  // namespace detail::sim

namespace detail::sim {

// The items, what each benefit applies to and the behaviour log of a program with behaviour,
// from the chunks' behaviour columns (in member order).
inline void simulated_behavior(const SimulatorParams& params, SimulatedProgram& program,
                               std::vector<ChunkEvents>& chunks, int threads) {
  const std::vector<std::string> categories = behavior_categories(params.n_categories);
  const int nc = params.n_categories;
  std::vector<std::string> ids, brands;
  std::vector<std::int32_t> category_codes;
  for (int c = 0; c < nc; ++c) {
    for (int j = 0; j < kItemsPerCategory; ++j) {
      ids.push_back(categories[static_cast<std::size_t>(c)] + "_" + std::to_string(j + 1));
      category_codes.push_back(c);
      brands.emplace_back(kItemBrands[j % 3]);
    }
  }
  ItemCatalog items(IdMap::from_strings(ids));
  items.add_level("category", std::move(category_codes), categories);
  items.add_level("brand", brands);
  std::vector<Index> pair_benefit, pair_item;
  const Catalog& catalog = program.catalog;
  for (Index b = 0; b < catalog.size(); ++b) {
    const Benefit& ben = catalog[b];
    for (Index i = 0; i < items.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const bool match =
          (ben.scope == Scope::category &&
           categories[static_cast<std::size_t>(k / kItemsPerCategory)] == ben.scope_value) ||
          (ben.scope == Scope::brand && brands[k] == ben.scope_value);
      if (match) {
        pair_benefit.push_back(b);
        pair_item.push_back(i);
      }
    }
  }
  program.benefit_items =
      BenefitItems::from_pairs(pair_benefit, pair_item, catalog.size(), items.size());
  ChunkEvents all;
  for (ChunkEvents& c : chunks) {
    auto append = [](auto& dst, auto& src) {
      dst.insert(dst.end(), src.begin(), src.end());
      src.clear();
      src.shrink_to_fit();
    };
    append(all.b_user, c.b_user);
    append(all.b_item, c.b_item);
    append(all.b_action, c.b_action);
    append(all.b_time, c.b_time);
    append(all.b_amount, c.b_amount);
    append(all.b_basket, c.b_basket);
  }
  BehaviorColumns columns;
  columns.user = all.b_user;
  columns.item = all.b_item;
  columns.action = all.b_action;
  columns.timestamp = all.b_time;
  columns.amount = all.b_amount;
  columns.basket = all.b_basket;
  BehaviorOptions options;
  options.n_users = params.n_users;
  options.n_items = items.size();
  options.action_names = {"purchase", "view"};
  options.unknown = UnknownItems::raise;
  options.num_threads = threads;
  program.behavior = BehaviorLog::from_columns(columns, options);
  program.items = std::move(items);
}

}  // namespace detail::sim

PERKREC_INLINE SimulatedProgram simulate(const SimulatorParams& params,
                                         const Callbacks& callbacks) {
  using namespace detail::sim;
  params.validate();
  SimulatedProgram program;
  program.params = params;
  program.catalog = simulated_catalog(params);
  const World world = make_world(params, program.catalog);
  const Index n = params.n_users;
  const Index nb = program.catalog.size();
  const int n_dims = world.dims.size();

  SimulationTruth& truth = program.truth;
  truth.n_users = n;
  truth.n_benefits = nb;
  truth.reference_time = params.start_time + static_cast<Timestamp>(params.days) * kSecondsPerDay;
  truth.dimension_names = world.dims.names();
  const auto nu = static_cast<std::size_t>(n);
  truth.archetype.resize(nu);
  truth.preference_lift.resize(nu * static_cast<std::size_t>(n_dims));
  truth.preference.resize(nu * static_cast<std::size_t>(n_dims));
  truth.claim_probability.resize(nu * static_cast<std::size_t>(nb));
  truth.redemption_probability.resize(truth.claim_probability.size());
  truth.incremental_probability.resize(truth.claim_probability.size());
  truth.preferred_hour.resize(nu);
  truth.preferred_weekday.resize(nu);
  truth.cycle_days.resize(nu);
  truth.cycle_shape.resize(nu);
  truth.basket_median.resize(nu);
  truth.signup_time.resize(nu);
  truth.lapse_time.resize(nu);
  truth.control.resize(nu);
  truth.expected_next_order_time.resize(nu);
  if (params.behavior) {
    truth.category_names = behavior_categories(params.n_categories);
    truth.category_share = world.category_share;
    truth.interest.resize(nu * static_cast<std::size_t>(params.n_categories));
  }
  std::vector<std::int32_t> attributes(nu * 4);
  std::vector<double> signup(nu);

  // Members are simulated in fixed chunks; chunk outputs are concatenated in order, so the
  // log does not depend on the thread count.
  constexpr Index kChunk = 512;
  const Index n_chunks = (n + kChunk - 1) / kChunk;
  std::vector<ChunkEvents> chunks(static_cast<std::size_t>(n_chunks));
  const int threads = resolve_num_threads(params.num_threads);
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  ProgressReporter progress(callbacks, "simulate", n);
  constexpr Index kChunksPerStep = 16;
  for (Index first = 0; first < n_chunks; first += kChunksPerStep) {
    const Index last = std::min(n_chunks, first + kChunksPerStep);
    parallel_for(
        first, last, threads,
        [&](Offset c, int thread) {
          ChunkEvents& out = chunks[static_cast<std::size_t>(c)];
          const Index begin = static_cast<Index>(c) * kChunk;
          const Index end = std::min(n, begin + kChunk);
          for (Index u = begin; u < end; ++u) {
            simulate_member(world, u, scratch[static_cast<std::size_t>(thread)], out, truth,
                            attributes, signup);
          }
        },
        Schedule::dynamic, 1);
    progress.advance(std::min(n, last * kChunk) - std::min(n, first * kChunk));
  }

  // Preferences in estimator units: expected claim rate per dimension relative to the
  // population's, with benefits weighted by the issuing policy's base weights.
  {
    std::vector<double> weight_sum(static_cast<std::size_t>(n_dims), 0.0);
    for (Index b = 0; b < nb; ++b) {
      for (int d : world.benefit_dims[static_cast<std::size_t>(b)]) {
        weight_sum[static_cast<std::size_t>(d)] += world.policy_weight[static_cast<std::size_t>(b)];
      }
    }
    std::vector<double> rates(nu * static_cast<std::size_t>(n_dims), 0.0);
    parallel_for(0, n, threads, [&](Offset u) {
      double* row = rates.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(n_dims);
      const float* claim = truth.claim_probability.data() +
                           static_cast<std::size_t>(u) * static_cast<std::size_t>(nb);
      for (Index b = 0; b < nb; ++b) {
        const double v = world.policy_weight[static_cast<std::size_t>(b)] * claim[b];
        for (int d : world.benefit_dims[static_cast<std::size_t>(b)]) row[d] += v;
      }
      for (int d = 0; d < n_dims; ++d) {
        row[d] = weight_sum[static_cast<std::size_t>(d)] > 0
                     ? row[d] / weight_sum[static_cast<std::size_t>(d)]
                     : 0.0;
      }
    });
    std::vector<double> population(static_cast<std::size_t>(n_dims), 0.0);
    for (std::size_t u = 0; u < nu; ++u) {
      for (int d = 0; d < n_dims; ++d)
        population[static_cast<std::size_t>(d)] +=
            rates[u * static_cast<std::size_t>(n_dims) + static_cast<std::size_t>(d)];
    }
    for (double& v : population) v /= static_cast<double>(nu);
    for (std::size_t i = 0; i < rates.size(); ++i) {
      const double pop = population[i % static_cast<std::size_t>(n_dims)];
      truth.preference[i] = static_cast<float>(pop > 0 ? rates[i] / pop : 1.0);
    }
  }

  // Concatenate chunk outputs.
  std::vector<Offset> starts(static_cast<std::size_t>(n_chunks) + 1, 0);
  for (Index c = 0; c < n_chunks; ++c) {
    starts[static_cast<std::size_t>(c) + 1] =
        starts[static_cast<std::size_t>(c)] +
        static_cast<Offset>(chunks[static_cast<std::size_t>(c)].user.size());
  }
  const auto total = static_cast<std::size_t>(starts.back());
  ChunkEvents all;
  all.user.resize(total);
  all.benefit.resize(total);
  all.type.resize(total);
  all.time.resize(total);
  all.channel.resize(total);
  all.amount.resize(total);
  all.propensity.resize(total);
  all.control.resize(total);
  parallel_for(0, n_chunks, threads, [&](Offset c) {
    ChunkEvents& src = chunks[static_cast<std::size_t>(c)];
    const auto at = static_cast<std::size_t>(starts[static_cast<std::size_t>(c)]);
    auto move_into = [&](auto& dst, auto& from) {
      std::copy(from.begin(), from.end(), dst.begin() + static_cast<std::ptrdiff_t>(at));
      from.clear();
      from.shrink_to_fit();
    };
    move_into(all.user, src.user);
    move_into(all.benefit, src.benefit);
    move_into(all.type, src.type);
    move_into(all.time, src.time);
    move_into(all.channel, src.channel);
    move_into(all.amount, src.amount);
    move_into(all.propensity, src.propensity);
    move_into(all.control, src.control);
  });
  EventColumns columns;
  columns.user = all.user;
  columns.benefit = all.benefit;
  columns.type = all.type;
  columns.timestamp = all.time;
  columns.channel = all.channel;
  columns.order_amount = all.amount;
  columns.propensity = all.propensity;
  columns.control = all.control;
  std::vector<std::string> channel_names(std::begin(kChannels), std::end(kChannels));
  program.events = EventLog::from_columns(columns, n, nb, channel_names, threads);
  program.events.set_ids(IdMap::range(n), program.catalog.ids());

  UserTable users(IdMap::range(n));
  auto categorical = [&](const char* name, int column, const auto& names) {
    std::vector<std::int32_t> codes(nu);
    for (std::size_t i = 0; i < nu; ++i)
      codes[i] = attributes[i * 4 + static_cast<std::size_t>(column)];
    users.add_categorical(name, std::move(codes),
                          std::vector<std::string>(std::begin(names), std::end(names)));
  };
  categorical("age_band", 0, kAgeBands);
  categorical("gender", 1, kGenders);
  categorical("tier", 2, kTiers);
  categorical("region", 3, kRegions);
  users.add_numeric("signup_time", std::move(signup));
  program.users = std::move(users);
  if (params.behavior) simulated_behavior(params, program, chunks, threads);
  return program;
}

}  // namespace perkrec
