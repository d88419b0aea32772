// core/params.hpp: the descriptor table of a params struct drives its validation and JSON.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

struct InnerParams {
  int depth = 3;  ///< 1..10
  static auto param_fields() {
    using P = InnerParams;
    return std::make_tuple(params::field("depth", &P::depth, params::closed(1, 10)));
  }
  void validate() const { params::validate_fields(*this, "InnerParams"); }
  Json to_json() const { return params::fields_to_json(*this); }
  static InnerParams from_json(const Json& j) {
    return params::fields_from_json<InnerParams>(j, "InnerParams::from_json");
  }
};

struct FlatParams {
  double scale = 1.0;  ///< > 0
  static auto param_fields() {
    using P = FlatParams;
    return std::make_tuple(params::field("scale", &P::scale, params::above(0)));
  }
  void validate() const { params::validate_fields(*this, "FlatParams"); }
};

struct DemoParams {
  enum class Kind : std::uint8_t { a, b, c };
  int count = 5;                                         ///< >= 1
  float rate = 0.1f;                                     ///< (0, 1)
  double cap = std::numeric_limits<double>::infinity();  ///< > 0; inf = none
  Kind kind = Kind::b;                                   ///< "a" or "b" (not c)
  std::vector<std::string> names{"x"};
  std::int64_t start = 0;  ///< required in JSON
  InnerParams inner;
  FlatParams flat;
  int num_threads = 0;

  static auto param_fields() {
    using P = DemoParams;
    static constexpr params::EnumName<Kind> kKinds[] = {{Kind::a, "a"}, {Kind::b, "b"}};
    return std::make_tuple(params::field("count", &P::count, params::at_least(1)),
                           params::field("rate", &P::rate, params::open(0, 1)),
                           params::field("cap", &P::cap, params::or_infinity(params::above(0))),
                           params::field("kind", &P::kind, kKinds),
                           params::field("names", &P::names),
                           params::required(params::field("start", &P::start)),
                           params::nested("inner", &P::inner), params::flattened(&P::flat),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const {
    params::validate_fields(*this, "DemoParams");
    if (count > 100 && kind == Kind::a)
      detail::raise<ConfigError>("DemoParams: count must be <= 100 with kind a");
  }
  Json to_json() const { return params::fields_to_json(*this); }
  static DemoParams from_json(const Json& j) {
    return params::fields_from_json<DemoParams>(j, "DemoParams::from_json");
  }
};

TEST(Params, ToJsonWritesEveryFieldOnce) {
  const Json j = DemoParams{}.to_json();
  const Json expected = {{"count", 5},     {"rate", 0.1},     {"kind", "b"},
                         {"names", {"x"}}, {"start", 0},      {"inner", {{"depth", 3}}},
                         {"scale", 1.0},   {"num_threads", 0}};
  EXPECT_EQ(j, expected);  // cap = inf: absent; rate: the shortest decimal of the float
}

TEST(Params, FromJsonRoundTripsAndKeepsDefaults) {
  DemoParams p;
  p.count = 7;
  p.rate = 0.3f;
  p.cap = 2.5;
  p.kind = DemoParams::Kind::a;
  p.names = {"u", "v"};
  p.start = 86400;
  p.inner.depth = 9;
  p.flat.scale = 4;
  const DemoParams q = DemoParams::from_json(p.to_json());
  EXPECT_EQ(q.to_json(), p.to_json());
  EXPECT_EQ(q.rate, 0.3f);
  EXPECT_EQ(q.cap, 2.5);
  const DemoParams d = DemoParams::from_json(Json{{"start", 1}});
  EXPECT_EQ(d.count, 5);
  EXPECT_TRUE(std::isinf(d.cap));
  EXPECT_EQ(d.inner.depth, 3);
  // A float written at double precision by an older version reads back to the same float.
  EXPECT_EQ(DemoParams::from_json(Json{{"start", 1}, {"rate", 0.10000000149011612}}).rate, 0.1f);
}

TEST(Params, ValidateNamesTheStructFieldValueAndRange) {
  DemoParams p;
  p.count = 0;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "DemoParams: count must be >= 1 (got 0)");
  p = {};
  p.rate = 1.0f;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError,
                           "DemoParams: rate must be finite and in (0, 1) (got 1)");
  p = {};
  p.rate = std::numeric_limits<float>::quiet_NaN();
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "rate must be finite");
  p = {};
  p.cap = 0;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "DemoParams: cap must be > 0 (got 0)");
  p.cap = -std::numeric_limits<double>::infinity();
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "cap must be > 0");
  p = {};
  p.kind = DemoParams::Kind::c;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError,
                           "DemoParams: kind must be \"a\" or \"b\" (got code 2)");
  p = {};
  p.inner.depth = 11;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError,
                           "InnerParams: depth must be in [1, 10] (got 11)");
  p = {};
  p.flat.scale = 0;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError,
                           "FlatParams: scale must be finite and > 0 (got 0)");
  p = {};
  p.num_threads = -1;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError,
                           "DemoParams: num_threads must be in [0, 1024] (got -1)");
  p = {};
  p.kind = DemoParams::Kind::a;
  p.count = 101;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "with kind a");  // the cross-field hook
  EXPECT_NO_THROW(DemoParams{}.validate());
}

TEST(Params, FromJsonIsStrictAndNamesThePointer) {
  const char* ctx = "DemoParams::from_json";
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json{{"start", 0}, {"cnt", 1}}), ConfigError, ctx,
                           "/cnt", "unknown key");
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json{{"count", 1}}), ConfigError, ctx, "/start",
                           "required key is missing");
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json{{"start", 0}, {"count", "many"}}),
                           ConfigError, "/count", "expected an integer");
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json{{"start", 0}, {"kind", "c"}}), ConfigError,
                           "/kind", "expected \"a\" or \"b\"", "(got \"c\")");
  PERKREC_EXPECT_THROW_MSG(
      DemoParams::from_json(Json{{"start", 0}, {"inner", {{"dept", 1}}}}), ConfigError,
      "DemoParams::from_json: /inner: InnerParams::from_json: /dept: unknown key");
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json{{"start", 0}, {"scale", -1}}), ConfigError,
                           ctx, "FlatParams: scale must be finite and > 0 (got -1)");
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json{{"start", 0}, {"count", 0}}), ConfigError,
                           ctx, "count must be >= 1");
  PERKREC_EXPECT_THROW_MSG(DemoParams::from_json(Json::array()), ConfigError, ctx,
                           "expected an object");
  // Duplicate keys are caught by the strict parser, before from_json.
  PERKREC_EXPECT_THROW_MSG(
      parse_json_strict<ConfigError>(R"({"start": 0, "count": 1, "count": 2})", ctx), ConfigError,
      "/count", "duplicate key");
}

// The library's own structs: the keys their files store are the keys they read.
template <class P>
void expect_round_trip() {
  const Json j = P{}.to_json();
  EXPECT_EQ(P::from_json(j).to_json(), j);
  EXPECT_EQ(params::default_json<P>(), j);
}

TEST(Params, LibraryStructsRoundTrip) {
  expect_round_trip<ALSParams>();
  expect_round_trip<BPRParams>();
  expect_round_trip<ItemKNNParams>();
  expect_round_trip<PopularityParams>();
  expect_round_trip<FMParams>();
  expect_round_trip<UpliftParams>();
  expect_round_trip<PreferenceParams>();
  expect_round_trip<ScoreBlendParams>();
  expect_round_trip<RankerParams>();
  expect_round_trip<AllocatorParams>();
  expect_round_trip<PlannerParams>();
}

TEST(Params, OlderFilesKeysStillLoad) {
  // Keys and values as the hand-written to_json of earlier versions wrote them.
  const Json fm = {{"field_aware", false},
                   {"factors", 8},
                   {"loss", "logistic"},
                   {"optimizer", "adagrad"},
                   {"learning_rate", 0.05000000074505806},
                   {"init_std", 0.009999999776482582},
                   {"reg_bias", 0.0},
                   {"reg_linear", 9.999999747378752e-06},
                   {"reg_factors", 9.999999747378752e-06},
                   {"epochs", 10},
                   {"early_stopping_rounds", 0},
                   {"shuffle", "blocks"},
                   {"num_threads", 1},
                   {"seed", 42}};
  EXPECT_EQ(FMParams::from_json(fm).to_json(), FMParams{}.to_json());
  const Json preference = {{"half_life_days", 365.0},
                           {"prior_strength", 0.0},
                           {"latent_classes", 8},
                           {"em_iterations", 20},
                           {"interval", 0.9},
                           {"timing_prior_strength", 8.0},
                           {"horizon_days", 30.0},
                           {"response", "claimed"},
                           {"face_value_edges", {10.0, 30.0}},
                           {"threshold_edges", {100.0, 300.0}},
                           {"typical_basket", 60.0},
                           {"member_time_columns", {"signup_time"}},
                           {"seed", 42},
                           {"num_threads", 0}};
  // member_time_columns was renamed user_time_columns: read, written under the new name.
  Json renamed = preference;
  renamed.erase("member_time_columns");
  renamed["user_time_columns"] = {"signup_time"};
  EXPECT_EQ(PreferenceParams::from_json(preference).to_json(), renamed);
  EXPECT_EQ(PreferenceParams::from_json(renamed).to_json(), renamed);
  const Json planner = {{"objective", "incremental"},
                        {"top_k", 50},
                        {"method", "dual"},
                        {"allocator", AllocatorParams{}.to_json()},
                        {"max_nodes", 10000000},
                        {"default_hour", 10},
                        {"min_validity_days", 1},
                        {"explain", true},
                        {"num_threads", 0}};
  EXPECT_EQ(PlannerParams::from_json(planner).to_json(), planner);
  const Json pacing = {{"start", 0},
                       {"end", 10},
                       {"spend_curve", Json::array()},
                       {"initial_multiplier", 0.0},
                       {"gain", 2.0},
                       {"pace_inventory", true}};
  EXPECT_EQ(PacingParams::from_json(pacing).to_json(), pacing);
  EXPECT_TRUE(std::isinf(PacingParams::from_json(pacing).budget));
}

struct RenamedParams {
  int epochs = 5;  ///< >= 1; JSON also "iterations" (its former name)
  static auto param_fields() {
    using P = RenamedParams;
    return std::make_tuple(params::renamed_from(
        params::field("epochs", &P::epochs, params::at_least(1)), "iterations"));
  }
  void validate() const { params::validate_fields(*this, "RenamedParams"); }
  Json to_json() const { return params::fields_to_json(*this); }
  static RenamedParams from_json(const Json& j) {
    return params::fields_from_json<RenamedParams>(j, "RenamedParams::from_json");
  }
};

TEST(Params, RenamedFieldReadsTheOldKeyAndWritesTheNewOne) {
  EXPECT_EQ(RenamedParams::from_json({{"epochs", 7}}).epochs, 7);
  EXPECT_EQ(RenamedParams::from_json({{"iterations", 8}}).epochs, 8);  // an older file
  EXPECT_EQ(RenamedParams::from_json({{"iterations", 8}}).to_json(), (Json{{"epochs", 8}}));
  EXPECT_EQ(RenamedParams::from_json(Json::object()).epochs, 5);
  PERKREC_EXPECT_THROW_MSG(RenamedParams::from_json({{"epochs", 7}, {"iterations", 8}}),
                           ConfigError, "former name of \"epochs\"");
  PERKREC_EXPECT_THROW_MSG(RenamedParams::from_json({{"iterations", 0}}), ConfigError,
                           "epochs must be >= 1");
  PERKREC_EXPECT_THROW_MSG(RenamedParams::from_json({{"iterations", "x"}}), ConfigError,
                           "/iterations");
  // The old key is not advertised among the expected ones.
  try {
    RenamedParams::from_json({{"epoch", 1}});
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("expected one of: epochs)"), std::string::npos)
        << e.what();
  }
}

TEST(Params, InteractionParamsEndTimeIsNowCutTime) {
  InteractionParams p;
  p.cut_time = 1234;
  const Json j = params::fields_to_json(p);
  EXPECT_EQ(j.at("cut_time"), 1234);
  EXPECT_FALSE(j.contains("end_time"));
}

}  // namespace
}  // namespace perkrec
