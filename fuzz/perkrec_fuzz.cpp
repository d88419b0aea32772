// libFuzzer targets for everything perkrec reads from elsewhere. One binary, the target chosen
// by the environment variable PERKREC_FUZZ_TARGET:
//   model      model-file container bytes -> the loader of the kind it names (every kind), then
//              a little use of what loaded (a loaded model must be safe to call)
//   json       strict JSON -> Policy, Catalog, ScoreBlend and the params of every model
//   request    one benefit_server request line -> BenefitServer::answer (a demo set-up is
//              written and loaded once); the answer must always be one valid JSON object
//   discount   the discount notation ("200:30", "15%", ...) -> parse_discount
//   events     bytes as event-log columns -> EventLog::from_columns, then save/load round trip
// A perkrec::Error is the expected outcome for bad input; any other exception, a crash, a
// sanitizer report, a leak or an allocation over libFuzzer's limit is a finding.
//
//   make fuzz FUZZ_SECONDS=600        # each target for 10 minutes (see Makefile)
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include <perkrec/perkrec.hpp>

#include "../examples/cpp/benefit_server.hpp"

namespace {

using namespace perkrec;

enum class Target { model, json, request, discount, events };
Target g_target = Target::model;
std::unique_ptr<benefit_server::BenefitServer> g_server;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "perkrec_fuzz: %s\n", what);
  std::abort();
}

template <class Model>
void use_recommender(const Model& m) {
  if (m.n_users() > 0 && m.n_benefits() > 0) {
    const std::vector<Index> users{0, m.n_users() - 1};
    const TopK top = m.recommend(users, 3);
    for (float s : top.scores) {
      if (std::isnan(s)) finding("a loaded model recommends a NaN score");
    }
  }
}

void fuzz_model(std::string_view bytes) {
  const ModelReader r = ModelReader::from_bytes(bytes);
  // Every kind of perkrec/kinds.hpp loads; some are then used.
  read_any(r, [](auto&& object) {
    using T = std::decay_t<decltype(object)>;
    if constexpr (std::is_same_v<T, EventLog>) {
      if (EventLog::from_bytes(object.to_bytes()).size() != object.size())
        finding("EventLog round trip changed it");
    } else if constexpr (std::is_same_v<T, Popularity> || std::is_same_v<T, ALS> ||
                         std::is_same_v<T, BPR> || std::is_same_v<T, ItemKNN>) {
      use_recommender(object);
    } else if constexpr (std::is_same_v<T, BenefitPlannerFile>) {
      // A file that loads must become a planner or a typed error (its config and encoder are
      // read here), and a small one must answer one member.
      try {
        const BenefitPlanner planner(std::move(object), 1);
        if (planner.n_users() > 0 &&
            static_cast<double>(planner.n_users()) * planner.n_benefits() <= 1e4) {
          const BenefitPlanner::State state = planner.prepare(planner.end_time());
          (void)planner.answer(state, 0, planner.end_time(), 2);
        }
      } catch (const Error&) {
      }
    } else if constexpr (std::is_same_v<T, InterestModel>) {
      // A file that loads must answer every member's top values (bounded work).
      if (object.n_users() > 0 &&
          static_cast<double>(object.n_users()) * static_cast<double>(object.n_values()) <= 1e5) {
        std::vector<Index> users(static_cast<std::size_t>(object.n_users()));
        for (Index u = 0; u < object.n_users(); ++u) users[static_cast<std::size_t>(u)] = u;
        (void)object.top(users, 3, 0.9);
      }
    } else if constexpr (std::is_same_v<T, CLVModel>) {
      // A file that loads must predict without crashing (finite or a typed error).
      const double work =
          static_cast<double>(object.summary().size()) * (1.0 + object.params().interval_draws);
      if (work <= 1e6) {
        try {
          (void)object.predict(4.0, 0.01, 1.0);
        } catch (const Error&) {
        }
      }
    }
  });
}

void fuzz_json(std::string_view text) {
  // Each reader on its own: one failing must not hide the others.
  const auto attempt = [](auto&& f) {
    try {
      f();
    } catch (const Error&) {
    }
  };
  attempt([&] { (void)Policy::from_string(text); });
  attempt([&] { (void)Catalog::from_json(text); });
  Json doc;
  try {
    doc = parse_json_strict<ConfigError>(text, "fuzz");
  } catch (const Error&) {
    return;
  }
  attempt([&] { (void)ScoreBlend::from_json(doc); });
  attempt([&] { (void)ScoreBlendParams::from_json(doc); });
  attempt([&] { (void)RankerParams::from_json(doc); });
  attempt([&] { (void)ALSParams::from_json(doc); });
  attempt([&] { (void)BPRParams::from_json(doc); });
  attempt([&] { (void)ItemKNNParams::from_json(doc); });
  attempt([&] { (void)PopularityParams::from_json(doc); });
  attempt([&] { (void)FMParams::from_json(doc); });
  attempt([&] { (void)CLVParams::from_json(doc); });
  attempt([&] { (void)PreferenceParams::from_json(doc); });
  attempt([&] { (void)AllocatorParams::from_json(doc); });
  attempt([&] { (void)PacingParams::from_json(doc); });
}

void fuzz_request(std::string_view line) {
  const std::string answer = g_server->answer(std::string(line));
  const Json parsed = Json::parse(answer, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("id")) {
    finding("benefit_server answered something that is not one JSON object with an id");
  }
}

void fuzz_discount(std::string_view text) {
  const ParsedDiscount d = parse_discount(text);
  for (double v : {d.threshold, d.face_value, d.discount_rate}) {
    if (!std::isfinite(v) || v < 0)
      finding("parse_discount returned a non-finite or negative number");
  }
}

// Column layout: a 1-byte row count, then per row user, benefit (i32), type (u8), time (i64),
// channel (i16), amount (f32), propensity (f32), control (u8).
void fuzz_events(std::string_view bytes) {
  if (bytes.empty()) return;
  const std::size_t per_row = 4 + 4 + 1 + 8 + 2 + 4 + 4 + 1;
  const std::size_t rows =
      std::min<std::size_t>(static_cast<unsigned char>(bytes[0]), (bytes.size() - 1) / per_row);
  std::vector<Index> user(rows), benefit(rows);
  std::vector<std::uint8_t> type(rows), control(rows);
  std::vector<Timestamp> time(rows);
  std::vector<std::int16_t> channel(rows);
  std::vector<float> amount(rows), propensity(rows);
  const char* p = bytes.data() + 1;
  for (std::size_t i = 0; i < rows; ++i) {
    std::memcpy(&user[i], p, 4);
    std::memcpy(&benefit[i], p + 4, 4);
    std::memcpy(&type[i], p + 8, 1);
    std::memcpy(&time[i], p + 9, 8);
    std::memcpy(&channel[i], p + 17, 2);
    std::memcpy(&amount[i], p + 19, 4);
    std::memcpy(&propensity[i], p + 23, 4);
    std::memcpy(&control[i], p + 27, 1);
    p += per_row;
  }
  EventColumns c;
  c.user = user;
  c.benefit = benefit;
  c.type = type;
  c.timestamp = time;
  const unsigned flags = bytes.size() > 1 ? static_cast<unsigned char>(bytes[bytes.size() - 1]) : 0;
  if (flags & 1) c.channel = channel;
  if (flags & 2) c.order_amount = amount;
  if (flags & 4) c.propensity = propensity;
  if (flags & 8) c.control = control;
  // Declared shapes from the data (-1) or bounded from the flags byte.
  const Index n_users = (flags & 16) ? static_cast<Index>(flags) : -1;
  const EventLog log = EventLog::from_columns(c, n_users, -1, {"email", "app", "sms"});
  const EventLog back = EventLog::from_bytes(log.to_bytes());
  if (back.size() != log.size() || back.n_users() != log.n_users())
    finding("EventLog round trip changed it");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* target = std::getenv("PERKREC_FUZZ_TARGET");
  const std::string t = target == nullptr ? "model" : target;
  if (t == "model") {
    g_target = Target::model;
  } else if (t == "json") {
    g_target = Target::json;
  } else if (t == "request") {
    g_target = Target::request;
    // A small demo service, written once into a private folder.
    const std::string dir = (std::filesystem::temp_directory_path() /
                             ("perkrec_fuzz_server_" + std::to_string(::getpid())))
                                .string();
    std::filesystem::create_directories(dir);
    const benefit_server::DemoSetup d = benefit_server::write_demo_setup(dir, 300, 7, 1);
    benefit_server::write_text_file(dir + "/policy.json",
                                    R"({"budget": 50, "max_per_member": 2, "max_per_kind": 1,
                                        "quiet_hours": {"start_hour": 22, "end_hour": 8}})");
    g_server =
        benefit_server::BenefitServer::load(benefit_server::demo_options(d, dir + "/policy.json"));
    std::filesystem::remove_all(dir);
  } else if (t == "discount") {
    g_target = Target::discount;
  } else if (t == "events") {
    g_target = Target::events;
  } else {
    std::fprintf(
        stderr,
        "perkrec_fuzz: unknown PERKREC_FUZZ_TARGET '%s' (model, json, request, discount, events)\n",
        t.c_str());
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    switch (g_target) {
      case Target::model:
        fuzz_model(bytes);
        break;
      case Target::json:
        fuzz_json(bytes);
        break;
      case Target::request:
        fuzz_request(bytes);
        break;
      case Target::discount:
        fuzz_discount(bytes);
        break;
      case Target::events:
        fuzz_events(bytes);
        break;
    }
  } catch (const Error&) {
    // The expected answer to bad input.
  }
  // Anything else escapes: libFuzzer reports it as a crash.
  return 0;
}
