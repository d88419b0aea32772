// The embedding example (examples/cpp/benefit_server.hpp) driven in-process: a simulated
// program's models saved to files, a policy, and ~2000 JSON-line requests answered on 1 and 4
// threads; and --planner: a fitted BenefitPlanner file served with the FM and the incremental
// objective, its answers equal to the pipeline's plan.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "../../examples/cpp/benefit_server.hpp"
#include "decide/benefit_planner_fixture.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

using benefit_server::BenefitServer;
using benefit_server::DemoSetup;

constexpr Index kMembers = 1200;
constexpr int kRequests = 2000;

// No budget and no inventory: decisions depend only on each member's own history of requests.
const char* kOpenPolicy = R"({
  "issue_cost": 0.05,
  "max_per_member": 2,
  "max_per_kind": 1,
  "quiet_hours": {"start_hour": 22, "end_hour": 8},
  "rules": [
    {"name": "no points for new members", "effect": "deny",
     "benefits": {"kinds": ["points"]}, "members": {"segments": ["new_member"]}},
    {"name": "exclusive perks for gold and platinum", "effect": "require",
     "benefits": {"kinds": ["member_exclusive"]},
     "members": {"attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]}]}}
  ]
})";

class BenefitServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        new std::string(testing::temp_dir() + "/benefit_server_test_" + std::to_string(::getpid()));
    const std::string mk = "mkdir -p '" + *dir_ + "'";
    ASSERT_EQ(std::system(mk.c_str()), 0);
    setup_ = new DemoSetup(benefit_server::write_demo_setup(*dir_, kMembers, 11, 2));
    requests_ = new std::vector<std::string>(benefit_server::demo_requests(*setup_, kRequests, 5));
  }
  static void TearDownTestSuite() {
    const std::string rm = "rm -rf '" + *dir_ + "'";
    (void)std::system(rm.c_str());
    delete requests_;
    delete setup_;
    delete dir_;
  }

  static std::unique_ptr<BenefitServer> server(const std::string& name, const std::string& policy) {
    const std::string path = *dir_ + "/" + name + ".json";
    benefit_server::write_text_file(path, policy);
    return BenefitServer::load(benefit_server::demo_options(*setup_, path));
  }

  static std::vector<std::string> run(const BenefitServer& s, const std::vector<std::string>& lines,
                                      int threads, benefit_server::ServeStats* stats = nullptr) {
    std::string text;
    for (const std::string& l : lines) text += l + "\n";
    std::istringstream in(text);
    std::ostringstream out;
    const benefit_server::ServeStats st = s.serve(in, out, threads);
    if (stats != nullptr) *stats = st;
    std::vector<std::string> answers;
    std::istringstream read(out.str());
    for (std::string line; std::getline(read, line);) answers.push_back(line);
    EXPECT_EQ(static_cast<std::int64_t>(answers.size()), st.answered);
    return answers;
  }

  /// Checks every answer against the policy as the server compiled it and as the test reads
  /// the data itself; returns the issued benefits per catalog index, and the total cost.
  static std::map<Index, int> check_answers(const BenefitServer& s,
                                            const std::vector<std::string>& answers,
                                            double* total_cost) {
    const Catalog& catalog = s.catalog();
    const UserTable& users = s.users();
    const std::vector<std::int32_t>& tier = users.codes("tier");
    const std::vector<std::string>& tiers = users.categories("tier");
    const PreferenceModel pref = PreferenceModel::load(setup_->preference);
    const SegmentAssignment seg = pref.segments(SegmentRules::defaults());
    std::map<Index, int> per_benefit;
    std::map<Index, int> per_member;
    std::map<std::pair<Index, int>, int> per_member_kind;
    *total_cost = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) {
      const Json a = Json::parse(answers[i]);
      EXPECT_EQ(a["id"], "r" + std::to_string(i)) << "answers out of input order";
      EXPECT_FALSE(a.contains("error")) << answers[i];
      if (a.contains("error")) continue;
      const Json& m = a["member"];
      const Index u = static_cast<Index>(m.is_string() ? std::stoll(m.get<std::string>())
                                                       : m.get<std::int64_t>());
      const Timestamp t = Json::parse((*requests_)[i])["time"].get<Timestamp>();
      EXPECT_LE(a["benefits"].size(), 2u);
      for (const Json& item : a["benefits"]) {
        const Index b = catalog.find(item["benefit"].get<std::string>());
        EXPECT_GE(b, 0) << answers[i];
        if (b < 0) continue;
        EXPECT_TRUE(s.compiled().masks.eligible(u, b)) << answers[i];
        // The two rules, evaluated directly on the data.
        if (catalog[b].kind == BenefitKind::member_exclusive) {
          const std::int32_t code = tier[static_cast<std::size_t>(u)];
          EXPECT_GE(code, 0) << answers[i];
          const std::string name =
              code >= 0 ? tiers[static_cast<std::size_t>(code)] : std::string();
          EXPECT_TRUE(name == "gold" || name == "platinum") << answers[i];
        }
        if (catalog[b].kind == BenefitKind::points) {
          EXPECT_NE(seg.names[static_cast<std::size_t>(seg.codes[static_cast<std::size_t>(u)])],
                    "new_member");
        }
        const double p = item["probability"].get<double>();
        EXPECT_GT(p, 0.0);
        EXPECT_LE(p, 1.0);
        EXPECT_GT(item["value"].get<double>(), item["cost"].get<double>());
        const Timestamp send = item["send_at"].get<Timestamp>();
        EXPECT_GE(send, t);
        EXPECT_EQ(s.policy().send_time(send, 0.0), send) << "sent in quiet hours: " << answers[i];
        EXPECT_GE(item["validity_days"].get<int>(), 1);
        EXPECT_LE(item["validity_days"].get<int>(), catalog[b].validity_days);
        EXPECT_TRUE(item["reasons"].contains("preferences"));
        EXPECT_TRUE(item["reasons"].contains("contributions"));
        *total_cost += item["cost"].get<double>();
        ++per_benefit[b];
        ++per_member[u];
        ++per_member_kind[{u, static_cast<int>(catalog[b].kind)}];
      }
    }
    // Caps hold across all of a member's requests.
    for (const auto& [u, n] : per_member) EXPECT_LE(n, 2) << "member " << u;
    for (const auto& [key, n] : per_member_kind)
      EXPECT_LE(n, 1) << "member " << key.first << " kind " << key.second;
    return per_benefit;
  }

  static std::string* dir_;
  static DemoSetup* setup_;
  static std::vector<std::string>* requests_;
};

std::string* BenefitServerTest::dir_ = nullptr;
DemoSetup* BenefitServerTest::setup_ = nullptr;
std::vector<std::string>* BenefitServerTest::requests_ = nullptr;

TEST_F(BenefitServerTest, WithoutBudgetAnswersDoNotDependOnThreads) {
  const auto one = server("open1", kOpenPolicy);
  const auto four = server("open4", kOpenPolicy);
  benefit_server::ServeStats s1, s4;
  const std::vector<std::string> a1 = run(*one, *requests_, 1, &s1);
  const std::vector<std::string> a4 = run(*four, *requests_, 4, &s4);
  ASSERT_EQ(a1.size(), static_cast<std::size_t>(kRequests));
  ASSERT_EQ(a4.size(), a1.size());
  for (std::size_t i = 0; i < a1.size(); ++i) ASSERT_EQ(a1[i], a4[i]) << "line " << i;
  EXPECT_EQ(s1.errors, 0);
  EXPECT_EQ(s1.benefits, s4.benefits);
  EXPECT_GT(s1.benefits, kRequests / 2);  // most requests get something
  double cost = 0;
  const std::map<Index, int> issued = check_answers(*one, a1, &cost);
  EXPECT_EQ(one->pacer().issued(), s1.benefits);
  EXPECT_NEAR(one->pacer().spent(), cost, 1e-3 * cost + 1e-3);
  EXPECT_GE(issued.size(), 5u);  // not one benefit for everyone
}

TEST_F(BenefitServerTest, BudgetAndInventoryNeverExceededUnderConcurrency) {
  // Without a budget the requests cost `open_cost`; a budget of a third of it must bind.
  const auto open = server("open_ref", kOpenPolicy);
  double open_cost = 0;
  const std::map<Index, int> open_issued =
      check_answers(*open, run(*open, *requests_, 2), &open_cost);
  ASSERT_GT(open_cost, 0);
  // Limit the inventory of the three most issued benefits to 5 units.
  std::vector<std::pair<int, Index>> by_count;
  int open_count = 0;
  for (const auto& [b, n] : open_issued) {
    by_count.emplace_back(-n, b);
    open_count += n;
  }
  std::sort(by_count.begin(), by_count.end());
  ASSERT_GE(by_count.size(), 3u);
  Json policy = Json::parse(kOpenPolicy);
  const double budget = std::floor(open_cost / 3.0);
  policy["budget"] = budget;
  std::set<Index> limited;
  for (int i = 0; i < 3; ++i) {
    const Index b = by_count[static_cast<std::size_t>(i)].second;
    ASSERT_GT(-by_count[static_cast<std::size_t>(i)].first, 5);
    policy["inventory"][open->catalog()[b].id] = 5;
    limited.insert(b);
  }
  for (int threads : {1, 4}) {
    const auto s = server("budget" + std::to_string(threads), policy.dump());
    benefit_server::ServeStats stats;
    const std::vector<std::string> answers = run(*s, *requests_, threads, &stats);
    ASSERT_EQ(answers.size(), static_cast<std::size_t>(kRequests));
    double cost = 0;
    const std::map<Index, int> issued = check_answers(*s, answers, &cost);
    EXPECT_LE(cost, budget * (1 + 1e-6)) << threads << " threads";
    EXPECT_LE(s->pacer().spent(), budget * (1 + 1e-9));
    EXPECT_GT(cost, 0.5 * budget) << "the pacer should spend most of the budget over the day";
    EXPECT_LT(stats.benefits, open_count) << "the budget should bind";
    for (Index b : limited) {
      auto it = issued.find(b);
      EXPECT_LE(it == issued.end() ? 0 : it->second, 5) << "inventory of " << s->catalog()[b].id;
    }
  }
}

TEST_F(BenefitServerTest, MalformedLinesGetErrorsAndDoNotStopTheOthers) {
  const std::vector<std::string> good(requests_->begin(), requests_->begin() + 400);
  // (line, start of the error, the id the answer must echo)
  const std::string too_long = R"({"id": "long", "member": ")" + std::string(200000, '7') + R"("})";
  const std::string deep =
      std::string(20000, '[') + std::string(20000, ']');  // within the line limit
  const std::vector<std::tuple<std::string, std::string, Json>> bad = {
      {R"({"id": "b1", "member": "1", "colour": "red"})",
       "InputError: request: /colour: unknown key", "b1"},
      {R"({"id": "b2", "member": "no-such-member"})",
       "InputError: request: /member: unknown member", "b2"},
      {R"({"id": "b3", "member": 999999})", "InputError: request: /member: unknown member", "b3"},
      {R"({"id": "b4", "member": "2", "n": 0})", "InputError: request: /n", "b4"},
      {R"({"id": "b5", "n": 1})", "InputError: request: /member: required key is missing", "b5"},
      {R"({"id": "b6", "member": "3", "time": "noon"})", "InputError: request: /time", "b6"},
      {R"({"id": "b7", "member": "4")", "InputError: request", "b7"},  // id read before the damage
      {R"(not json at all)", "InputError: request", nullptr},
      {R"([1, 2, 3])", "InputError: request", nullptr},
      {"{\"id\": \"b8\", \"member\": \"\xff\xfe\"}", "InputError: request", "b8"},  // invalid UTF-8
      {"\xc3\x28\x80 {\"id\": 1}", "InputError: request", nullptr},
      {R"({"id": 9, "member": "5", "time": 9223372036854775807})", "InputError: request: /time", 9},
      {R"({"id": 10, "member": "5", "time": -9223372036854775808})", "InputError: request: /time",
       10},
      {R"({"member": "5", "id": "b11", "n": 1,})", "InputError: request", "b11"},
      {too_long, "InputError: request: line too long", nullptr},
      {deep, "InputError: request", nullptr},
      {R"({"id": {"nested": 1}, "member": "1"})", "InputError: request: /id", nullptr},
      {R"({"id": 1e999, "member": "1"})", "InputError: request: /id",
       nullptr},  // inf cannot be echoed
  };
  std::vector<std::string> mixed;
  std::vector<int> bad_at;  // position in `mixed` of bad[i], or -1 for a good line
  for (std::size_t i = 0; i < good.size(); ++i) {
    mixed.push_back(good[i]);
    bad_at.push_back(-1);
    if (i % 20 == 7) {
      const std::size_t k = (i / 20) % bad.size();
      mixed.push_back(std::get<0>(bad[k]));
      bad_at.push_back(static_cast<int>(k));
    }
  }
  const auto ref = server("ref", kOpenPolicy);
  const std::vector<std::string> expected = run(*ref, good, 1);
  for (int threads : {1, 4}) {
    const auto s = server("mixed" + std::to_string(threads), kOpenPolicy);
    benefit_server::ServeStats stats;
    const std::vector<std::string> answers = run(*s, mixed, threads, &stats);
    ASSERT_EQ(answers.size(), mixed.size());
    std::size_t g = 0;
    int errors = 0;
    for (std::size_t i = 0; i < mixed.size(); ++i) {
      if (bad_at[i] < 0) {
        EXPECT_EQ(answers[i], expected[g++]) << "line " << i;
        continue;
      }
      ++errors;
      // Every answer is valid UTF-8 JSON, whatever bytes the line held.
      const Json a = Json::parse(answers[i]);
      const auto& [line, message, id] = bad[static_cast<std::size_t>(bad_at[i])];
      ASSERT_TRUE(a.contains("error")) << line.substr(0, 80);
      EXPECT_EQ(a["error"].get<std::string>().rfind(message, 0), 0u)
          << a["error"] << " for " << line.substr(0, 80);
      EXPECT_EQ(a.size(), 2u);
      // The id is echoed whenever it could be read, also from a line broken after it.
      EXPECT_EQ(a["id"], id) << line.substr(0, 80);
      EXPECT_LT(answers[i].size(), 1000u) << "an error answer echoes a bounded part of the line";
      // answer() gives the same error line without throwing.
      EXPECT_EQ(s->answer(line), answers[i]);
    }
    EXPECT_EQ(stats.errors, errors);
    std::set<int> kinds(bad_at.begin(), bad_at.end());
    EXPECT_EQ(kinds.size(), bad.size() + 1) << "every bad line kind is exercised";
  }
}

// Counts flushes: std::cin is tied to std::cout, so a reader that flushes its tied stream
// while the writer thread writes corrupts the output (`server < requests > answers`).
class CountingBuf : public std::stringbuf {
 public:
  std::atomic<int> syncs{0};

 protected:
  int sync() override {
    ++syncs;
    return std::stringbuf::sync();
  }
};

TEST_F(BenefitServerTest, TiedInputStreamIsNotFlushedWhileServing) {
  const std::vector<std::string> lines(requests_->begin(), requests_->begin() + 300);
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  const auto s = server("tied", kOpenPolicy);
  for (int threads : {1, 3}) {
    std::istringstream in(text);
    CountingBuf buf;
    std::ostream out(&buf);
    in.tie(&out);
    const benefit_server::ServeStats st = s->serve(in, out, threads);
    EXPECT_EQ(st.answered, 300);
    EXPECT_LE(buf.syncs.load(), 1) << "the reading thread flushed the output stream";
    EXPECT_EQ(in.tie(), &out) << "the tie is restored afterwards";
  }
}

TEST_F(BenefitServerTest, BoundedLineReading) {
  const auto s = server("lines", kOpenPolicy);
  // A line without a final newline is answered; a long line is skipped without being kept,
  // and the next line is read from the right place.
  const std::string good = (*requests_)[0];
  const std::string text = std::string(1 << 20, 'x') + "\n" + good + "\r\n\n   \n" + good;
  std::istringstream in(text);
  std::ostringstream out;
  const benefit_server::ServeStats st = s->serve(in, out, 2);
  ASSERT_EQ(st.answered, 3);
  EXPECT_EQ(st.errors, 1);
  std::istringstream read(out.str());
  std::vector<std::string> answers;
  for (std::string line; std::getline(read, line);) answers.push_back(line);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_NE(answers[0].find("line too long (got 1048576 bytes, limit 65536)"), std::string::npos)
      << answers[0];
  EXPECT_EQ(Json::parse(answers[1])["id"], "r0");
  EXPECT_EQ(Json::parse(answers[2])["id"], "r0");
}

TEST_F(BenefitServerTest, LoadRejectsMismatchedFiles) {
  const std::string policy = *dir_ + "/load_policy.json";
  benefit_server::write_text_file(policy, kOpenPolicy);
  benefit_server::ServerOptions o = benefit_server::demo_options(*setup_, policy);
  o.models = {setup_->catalog};
  EXPECT_THROW(BenefitServer::load(o), ModelFormatError);
  o = benefit_server::demo_options(*setup_, policy);
  o.models = {setup_->als};
  o.blend.clear();  // ALS scores are no probabilities
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "Popularity");
  o = benefit_server::demo_options(*setup_, policy);
  o.models = {setup_->popularity};  // the blend needs its "als" source
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "'als'");
  o = benefit_server::demo_options(*setup_, policy);
  o.threads = 0;
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "threads");
  o.threads = 99999;  // would start 99999 threads
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "threads");
  o = benefit_server::demo_options(*setup_, policy);
  o.plan_time = std::numeric_limits<Timestamp>::max();  // the pacing period would overflow
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "plan_time");
  o = benefit_server::demo_options(*setup_, policy);
  o.max_line_bytes = 1;
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "max_line_bytes");
  // A catalog of another program.
  SimulatorParams other;
  other.n_benefits = 20;
  const std::string catalog = *dir_ + "/other_catalog.json";
  benefit_server::write_text_file(catalog, simulated_catalog(other).to_json());
  o = benefit_server::demo_options(*setup_, policy);
  o.catalog = catalog;
  EXPECT_THROW(BenefitServer::load(o), InputError);
}

// --planner: the pipeline file written by the C++ fixture (FM + encoder, preference, order
// values, held-out issues) served without a budget; every member's answer at the plan time
// holds BenefitPlanner's probabilities and the plan's benefits, values and send times, on 1
// and 4 threads alike.
TEST(BenefitServerPlanner, AnswersEqualThePipelinesPlanOnAnyThreadCount) {
  const test::Fixture& fx = test::fixture();
  BenefitPlannerFile f = fx.file;
  f.config["policy"] = Json{{"max_per_member", 1}, {"issue_cost", 0.05}};
  // Unlimited inventories: the pacer hands out units first come, first served, so a binding
  // inventory would make the answers depend on the order members arrive in (the plan
  // allocates it over all members at once).
  std::vector<Benefit> unlimited = f.catalog.benefits();
  for (Benefit& b : unlimited) b.inventory = -1;
  f.catalog = Catalog(std::move(unlimited));
  const std::string path =
      testing::temp_dir() + "/perkrec_server_planner_" + std::to_string(::getpid()) + ".perk";
  f.save(path);
  benefit_server::ServerOptions o;
  o.planner = path;
  const BenefitPlanner bp(f, 1);
  const BenefitPlanner::State state = bp.prepare(bp.end_time());
  const IdMap& ids = bp.file().users->users();
  std::string text;
  for (Index u = 0; u < bp.n_users(); ++u) {
    const std::string id =
        ids.strings().empty() ? std::to_string(ids.integer_at(u)) : ids.string_at(u);
    text += "{\"id\": " + std::to_string(u) + ", \"member\": \"" + id + "\"}\n";
  }
  std::vector<std::string> first;
  for (int threads : {1, 4}) {
    const auto s = BenefitServer::load(o);  // a fresh pacer: without a budget it only counts caps
    EXPECT_EQ(s->options().plan_time, bp.end_time());
    std::istringstream in(text);
    std::ostringstream out;
    const benefit_server::ServeStats st = s->serve(in, out, threads);
    EXPECT_EQ(st.answered, bp.n_users());
    EXPECT_EQ(st.errors, 0);
    std::vector<std::string> lines;
    std::istringstream read(out.str());
    for (std::string line; std::getline(read, line);) lines.push_back(line);
    if (first.empty()) first = lines;
    EXPECT_EQ(lines, first) << threads << " threads";
  }
  // Without a budget the pacer issues the candidates of largest value, as the plan allocates
  // them: per member the same benefits, probabilities and send times as the plan's rows.
  const BenefitPlanner::Plan plan = bp.plan(bp.end_time());
  std::map<Index, std::vector<Index>> planned;
  for (std::size_t i = 0; i < plan.result.member.size(); ++i)
    planned[plan.result.member[i]].push_back(static_cast<Index>(i));
  int issued = 0;
  for (Index u = 0; u < bp.n_users(); ++u) {
    const Json a = Json::parse(first[static_cast<std::size_t>(u)]);
    const std::vector<float> p = bp.user_probability(state, u, bp.end_time());
    const std::vector<Index>& rows = planned[u];
    ASSERT_EQ(a["benefits"].size(), rows.size()) << first[static_cast<std::size_t>(u)];
    std::set<std::string> got_ids, want_ids;
    for (const Json& got : a["benefits"]) {
      got_ids.insert(got["benefit"].get<std::string>());
      const Index b = f.catalog.find(got["benefit"].get<std::string>());
      EXPECT_NEAR(got["probability"].get<double>(), p[static_cast<std::size_t>(b)], 1e-6);
      const auto row = std::find_if(rows.begin(), rows.end(),
                                    [&](Index r) { return plan.result.benefit[r] == b; });
      if (row == rows.end()) continue;
      EXPECT_NEAR(got["value"].get<double>(), plan.result.value[*row],
                  1e-5 * std::max(1.0f, plan.result.value[*row]));
      EXPECT_EQ(got["send_at"].get<Timestamp>(), plan.result.send_at[*row]);
      ++issued;
    }
    for (Index r : rows) want_ids.insert(f.catalog[plan.result.benefit[r]].id);
    EXPECT_EQ(got_ids, want_ids) << "member " << u;
  }
  EXPECT_GT(issued, bp.n_users() / 2);
  // The pipeline file holds everything: other sources alongside it are a ConfigError.
  o.models = {path};
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), ConfigError, "planner");
  std::remove(path.c_str());
}

// --planner with --behavior: the saved log replaces the behaviour the pipeline file stores
// (the answers' probabilities are the planner's with that log, not with the stored one); the
// log's member ids must be the planner's; --behavior without --planner is a ConfigError.
TEST(BenefitServerPlanner, BehaviorFileReplacesTheStoredBehaviour) {
  const test::Fixture& fx = test::behavior_fixture();
  BenefitPlannerFile f = fx.file;
  f.config["policy"] = Json{{"max_per_member", 2}};
  ASSERT_TRUE(f.users.has_value());
  const IdMap& ids = f.users->users();
  f.events.set_ids(ids, f.events.benefit_ids());
  const std::string stem =
      testing::temp_dir() + "/perkrec_server_behavior_" + std::to_string(::getpid());
  f.save(stem + ".planner.perk");
  BehaviorLog older =
      test::BehaviorRows::of(fx.prog.behavior, fx.end - 45 * 86400).build(fx.prog.behavior);
  older.set_user_ids(ids);
  older.save(stem + ".log.perk");
  benefit_server::ServerOptions o;
  o.planner = stem + ".planner.perk";
  o.behavior = stem + ".log.perk";
  const auto server = BenefitServer::load(o);
  const BenefitPlanner bp(f, 1);
  const Timestamp at = bp.end_time();
  const BenefitPlanner::State with_older = bp.prepare(at, nullptr, &older);
  const BenefitPlanner::State stored = bp.prepare(at);
  std::string text;
  const Index n = std::min<Index>(60, bp.n_users());
  for (Index u = 0; u < n; ++u) {
    const std::string id =
        ids.strings().empty() ? std::to_string(ids.integer_at(u)) : ids.string_at(u);
    text += "{\"id\": " + std::to_string(u) + ", \"member\": \"" + id + "\"}\n";
  }
  std::istringstream in(text);
  std::ostringstream out;
  EXPECT_EQ(server->serve(in, out, 1).errors, 0);
  std::istringstream read(out.str());
  int checked = 0, differ = 0;
  Index u = 0;
  for (std::string line; std::getline(read, line); ++u) {
    const Json a = Json::parse(line);
    const std::vector<float> p = bp.user_probability(with_older, u, at);
    const std::vector<float> q = bp.user_probability(stored, u, at);
    for (const Json& got : a["benefits"]) {
      const auto b = static_cast<std::size_t>(f.catalog.find(got["benefit"].get<std::string>()));
      EXPECT_NEAR(got["probability"].get<double>(), p[b], 1e-6) << line;
      differ += std::abs(p[b] - q[b]) > 1e-4f;
      ++checked;
    }
  }
  EXPECT_EQ(u, n);
  EXPECT_GT(checked, n / 2);
  EXPECT_GT(differ, 0);  // the older log changes what is served, so the check above can fail
  // A log of other member ids is refused.
  std::vector<std::string> other;
  for (Index i = 0; i < older.n_users(); ++i) other.push_back("other-" + std::to_string(i));
  older.set_user_ids(IdMap::from_strings(other));
  older.save(stem + ".log.perk");
  PERKREC_EXPECT_THROW_MSG(BenefitServer::load(o), InputError, "behavior", "member ids");
  // --behavior replaces the planner's log: without --planner it is a ConfigError.
  benefit_server::ServerOptions plain;
  plain.behavior = stem + ".log.perk";
  plain.catalog = "catalog.json";
  plain.users = "users.perk";
  plain.policy = "policy.json";
  plain.models = {"model.perk"};
  PERKREC_EXPECT_THROW_MSG(plain.validate(), ConfigError, "behavior", "--planner");
  std::remove((stem + ".planner.perk").c_str());
  std::remove((stem + ".log.perk").c_str());
}

}  // namespace
}  // namespace perkrec
