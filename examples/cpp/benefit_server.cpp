// benefit_server: embedding perkrec in a C++ service.
//
// Loads saved models, a catalog and a policy once, then answers benefit decision requests read
// as JSON lines from standard input with JSON lines on standard output, deciding on several
// threads at once (the request protocol and the decision steps are documented in
// benefit_server.hpp, which holds the reusable logic).
//
//   # what a training job leaves behind (simulated program, models, policy, requests):
//   ./perkrec_benefit_server --generate DIR [--members 2000] [--requests 200]
//   # the service:
//   ./perkrec_benefit_server --catalog DIR/catalog.json --users DIR/users.perk
//       --policy DIR/policy.json --model DIR/popularity.perk --model DIR/als.perk
//       --preference DIR/preference.perk --blend DIR/blend.json --plan-time 1775001600
//       --threads 4 < DIR/requests.jsonl > answers.jsonl
//
//   # or fit the pipeline from the log in C++ (perkrec::fit_benefit_planner), then serve it:
//   ./perkrec_benefit_server --fit-planner DIR/planner.perk --catalog DIR/catalog.json
//       --users DIR/users.perk --history DIR/history.perk --policy DIR/policy.json [--cut T]
//   ./perkrec_benefit_server --planner DIR/planner.perk < DIR/requests.jsonl > answers.jsonl
//
//   request:  {"id": "r1", "member": "123", "n": 2, "time": 1775005200}
//   answer:   {"id": "r1", "member": "123", "benefits": [{"benefit": "B07", "probability": 0.31,
//              "value": 3.1, "cost": 0.6, "send_at": 1775037600, "validity_days": 14,
//              "reasons": {...}}]}
//   bad line: {"id": "r2", "error": "InputError: request: /colour: unknown key (...)"}
//
// Options (see ServerOptions): --catalog, --users, --policy, --model (repeatable),
// --preference, --blend, --history, or instead of those seven --planner FILE (a fitted
// perkrec.BenefitPlanner: FM + preference + incremental objective; plan time default = the
// end of its log) with --behavior FILE (a saved BehaviorLog read instead of the behaviour the
// pipeline file stores: a newer log of the same items and members), --plan-time (UTC seconds),
// --period-hours (pacing period, default 24), --value (value of one redemption, default 10),
// --value-column, --top-k (default 20), --threads (default 1, at most 1024), --max-line-bytes
// (default 65536: longer request lines get an error answer), --input FILE / --output FILE (default
// stdin / stdout),
// --help. --generate creates DIR when it does not exist.
// A summary goes to standard error at the end. Exit status: 0 when every line was answered
// (error answers included), 1 when loading failed, 2 for bad command-line options.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "benefit_server.hpp"

namespace {

const char* kUsage =
    "usage: perkrec_benefit_server --catalog FILE --users FILE --policy FILE --model FILE... "
    "[--preference FILE] [--blend FILE] [--history FILE] [--plan-time T] [--period-hours H] "
    "[--value V] [--value-column NAME] [--top-k K] [--threads N] [--max-line-bytes B] "
    "[--input FILE] [--output FILE]\n"
    "       perkrec_benefit_server --planner FILE [--behavior FILE] [--plan-time T] "
    "[--period-hours H] "
    "[--threads N] [--max-line-bytes B] [--input FILE] [--output FILE]\n"
    "       perkrec_benefit_server --generate DIR [--members N] [--requests N]\n"
    "       perkrec_benefit_server --fit-planner OUT --catalog FILE --history FILE --policy FILE "
    "[--users FILE] [--cut T]\n"
    "Requests are JSON lines on standard input (or --input), answers JSON lines on standard\n"
    "output (or --output), in input order; see benefit_server.hpp for the protocol.\n";

int usage(const std::string& message) {
  std::cerr << "perkrec_benefit_server: " << message << "\n" << kUsage;
  return 2;
}

// The policy the --generate mode writes: a budget, caps, quiet hours and two rules.
const char* kDemoPolicy = R"({
  "budget": 300,
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
}
)";

int generate(const std::string& dir, perkrec::Index members, std::int64_t requests) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::cerr << "perkrec_benefit_server: cannot create " << dir << ": " << ec.message() << "\n";
    return 1;
  }
  const benefit_server::DemoSetup d = benefit_server::write_demo_setup(dir, members);
  benefit_server::write_text_file(dir + "/policy.json", kDemoPolicy);
  std::vector<std::string> lines = benefit_server::demo_requests(d, requests);
  // Two bad lines among the good ones: an unknown key and an unknown member.
  if (lines.size() >= 4) {
    lines[1] = R"({"id": "bad-key", "member": "1", "colour": "red"})";
    lines[3] = R"({"id": "bad-member", "member": "no-such-member"})";
  }
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  benefit_server::write_text_file(dir + "/requests.jsonl", text);
  std::cout << "wrote " << dir
            << "/{catalog.json,users.perk,popularity.perk,als.perk,preference.perk,"
            << "blend.json,history.perk,policy.json,requests.jsonl}; plan time " << d.plan_time
            << "\n";
  return 0;
}

// --fit-planner: BenefitPlanner's defaults fitted on the saved log (--history), the catalog,
// the optional member table and the policy; the file --planner serves.
int fit_planner(const benefit_server::ServerOptions& o, const std::string& out,
                perkrec::Timestamp cut) {
  if (o.catalog.empty() || o.history.empty() || o.policy.empty())
    return usage("--fit-planner needs --catalog, --history and --policy");
  const perkrec::Catalog catalog =
      perkrec::Catalog::from_json(benefit_server::read_text_file(o.catalog, "catalog"));
  const perkrec::EventLog events = perkrec::EventLog::load(o.history);
  std::optional<perkrec::UserTable> users;
  if (!o.users.empty()) users = perkrec::UserTable::load(o.users);
  perkrec::BenefitPlannerFitParams params;
  params.policy = perkrec::parse_json_strict<perkrec::ConfigError>(
      benefit_server::read_text_file(o.policy, "policy"), "policy");
  params.num_threads = o.threads;
  const perkrec::BenefitPlannerFile file = perkrec::fit_benefit_planner(
      events, catalog, users ? &*users : nullptr, cut, nullptr, params);
  file.save(out);
  std::cout << "fitted " << out << " (" << events.n_users() << " members, " << catalog.size()
            << " benefits, cut " << file.config.at("cut_time") << ", end "
            << file.config.at("end_time") << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  benefit_server::ServerOptions o;
  std::string input, output, generate_dir, fit_out;
  perkrec::Timestamp cut = perkrec::kNoTime;
  perkrec::Index members = 2000;
  std::int64_t requests = 200;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--help" || arg == "-h") {
        std::cout << kUsage;
        return 0;
      }
      if (arg == "--catalog")
        o.catalog = value();
      else if (arg == "--users")
        o.users = value();
      else if (arg == "--policy")
        o.policy = value();
      else if (arg == "--model")
        o.models.push_back(value());
      else if (arg == "--preference")
        o.preference = value();
      else if (arg == "--blend")
        o.blend = value();
      else if (arg == "--history")
        o.history = value();
      else if (arg == "--planner")
        o.planner = value();
      else if (arg == "--behavior")
        o.behavior = value();
      else if (arg == "--plan-time")
        o.plan_time = std::stoll(value());
      else if (arg == "--period-hours")
        o.period_hours = std::stod(value());
      else if (arg == "--value")
        o.value_per_redemption = std::stod(value());
      else if (arg == "--value-column")
        o.value_column = value();
      else if (arg == "--top-k")
        o.top_k = std::stoi(value());
      else if (arg == "--threads")
        o.threads = std::stoi(value());
      else if (arg == "--max-line-bytes")
        o.max_line_bytes = std::stoull(value());
      else if (arg == "--input")
        input = value();
      else if (arg == "--output")
        output = value();
      else if (arg == "--generate")
        generate_dir = value();
      else if (arg == "--fit-planner")
        fit_out = value();
      else if (arg == "--cut")
        cut = std::stoll(value());
      else if (arg == "--members")
        members = std::stoi(value());
      else if (arg == "--requests")
        requests = std::stoll(value());
      else
        return usage("unknown option " + arg);
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }

  try {
    if (!generate_dir.empty()) return generate(generate_dir, members, requests);
    if (!fit_out.empty()) return fit_planner(o, fit_out, cut);
    const std::unique_ptr<benefit_server::BenefitServer> server =
        benefit_server::BenefitServer::load(o);
    std::ifstream in_file;
    std::ofstream out_file;
    if (!input.empty()) {
      in_file.open(input);
      if (!in_file) return usage("cannot open " + input);
    }
    if (!output.empty()) {
      out_file.open(output);
      if (!out_file) return usage("cannot write " + output);
    }
    std::istream& in = input.empty() ? std::cin : in_file;
    std::ostream& out = output.empty() ? std::cout : out_file;
    std::ios::sync_with_stdio(false);
    std::cin.tie(
        nullptr);  // serve() unties its input too; a tied cout would be flushed by the reader
    const benefit_server::ServeStats stats = server->serve(in, out);
    std::cerr << "answered " << stats.answered << " requests (" << stats.errors << " errors, "
              << stats.benefits << " benefits) on " << o.threads << " threads; spent "
              << server->pacer().spent() << " of budget " << server->compiled().constraints.budget
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "perkrec_benefit_server: " << benefit_server::error_class(e) << ": " << e.what()
              << "\n";
    return 1;
  }
}
