// The recommender contract's shared pieces: filters and the fused, parallel top-K.
//
// Every model's `recommend(users, n, filter)` scores all benefits for each requested member,
// drops the ones the filter excludes, and keeps the n best — in one pass per member, parallel
// over members, with no Python involved. Filters:
//   exclude_rows  CSR, row i = benefits to skip for users[i] (typically the member's training
//                 interactions: "filter already interacted")
//   exclude       benefits never returned
//   allow         when non-empty, the only benefits that may be returned
//   eligibility   CSR, row i = the eligibility mask of users[i]: the benefits it lists are the
//                 only ones allowed (eligibility_blocks = false) or are blocked (true)
//   filter_already_interacted  (default true) recommend_new(user_benefits, ...) never returns
//                 a benefit in the member's own row of user_benefits — the same default as
//                 Python's recommend / recommend_new(filter_already_interacted=True). For
//                 recommend(users) the model has no such rows: pass them as exclude_rows.
// Row-aligned filters have one row per requested member (row i applies to users[i]); a filter
// with 0 rows is not applied. An excluded or ineligible benefit is never returned, and neither
// is a benefit whose score is NaN.
//
// Result: TopK with users.size() x n entries, best first; ties broken by lower benefit index.
// Rows with fewer than n candidates are padded with id -1 and score -infinity.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/id_map.hpp"

namespace perkrec {

struct Filter {
  CsrView<float> exclude_rows;  ///< rows == users.size() or 0
  std::vector<Index> exclude;   ///< benefit indices never returned
  std::vector<Index> allow;  ///< when non-empty (or allow_only is set), only these may be returned
  bool allow_only =
      false;  ///< true: `allow` restricts even when empty (an empty list allows nothing)
  CsrView<float> eligibility;       ///< rows == users.size() or 0
  bool eligibility_blocks = false;  ///< false: eligibility lists allowed benefits; true: blocked
  /// recommend_new only: also skip the benefits in each member's own row of user_benefits.
  bool filter_already_interacted = true;

  /// Whether `allow` limits what may be returned.
  bool restricts() const { return allow_only || !allow.empty(); }

  /// Throws InputError for shapes or indices that do not fit (`n_rows` requested members,
  /// `n_benefits` catalog size).
  void validate(Index n_rows, Index n_benefits) const {
    auto check_rows = [&](const CsrView<float>& m, const char* name) {
      if (m.rows == 0) return;
      if (m.rows != n_rows || m.cols != n_benefits) {
        detail::raise<InputError>("Filter: ", name, " has shape ", m.rows, " x ", m.cols,
                                  " (expected ", n_rows, " x ", n_benefits,
                                  ": one row per requested member)");
      }
      m.validate(name);
    };
    check_rows(exclude_rows, "exclude_rows");
    check_rows(eligibility, "eligibility");
    auto check_list = [&](const std::vector<Index>& list, const char* name) {
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (list[i] < 0 || list[i] >= n_benefits) {
          detail::raise<InputError>("Filter: ", name, "[", i, "] out of range (got ", list[i],
                                    ", expected 0 <= benefit < ", n_benefits, ")");
        }
      }
    };
    check_list(exclude, "exclude");
    check_list(allow, "allow");
  }
};

/// Default `max_growth` of partial_fit_users / partial_fit_benefits: one call may add ids up
/// to n + max_growth - 1 (n = the current count); larger ids are InputErrors, so an id typed
/// wrong cannot allocate gigabytes. Raise it explicitly to grow further in one call.
inline constexpr Index kDefaultMaxGrowth = 1 << 20;

/// Top-K result: `ids` and `scores` are rows x k, row-major, best first.
struct TopK {
  Index rows = 0;
  int k = 0;
  std::vector<Index> ids;
  std::vector<float> scores;
};

namespace detail {

/// The filter recommend_new applies to `rows` (its user_benefits): `filter` itself, or, with
/// filter.filter_already_interacted, `filter` whose exclude_rows also holds each row's own
/// benefits (the union when the caller set exclude_rows too).
class NewRowsFilter {
 public:
  NewRowsFilter(const Filter& filter, const CsrView<float>& rows) : filter_(&filter) {
    if (!filter.filter_already_interacted || rows.rows == 0) return;
    own_ = filter;
    filter_ = &own_;
    const CsrView<float>& given = filter.exclude_rows;
    if (given.rows == 0) {
      own_.exclude_rows = rows;
      return;
    }
    filter.validate(rows.rows, rows.cols);  // shapes first: the merge reads both row by row
    merged_.rows = rows.rows;
    merged_.cols = rows.cols;
    merged_.indptr.assign(static_cast<std::size_t>(rows.rows) + 1, 0);
    merged_.indices.reserve(static_cast<std::size_t>(rows.nnz() + given.nnz()));
    for (Index r = 0; r < rows.rows; ++r) {
      merged_.indices.insert(merged_.indices.end(), rows.indices + rows.row_begin(r),
                             rows.indices + rows.row_end(r));
      merged_.indices.insert(merged_.indices.end(), given.indices + given.row_begin(r),
                             given.indices + given.row_end(r));
      merged_.indptr[static_cast<std::size_t>(r) + 1] = static_cast<Offset>(merged_.indices.size());
    }
    own_.exclude_rows = {merged_.rows, merged_.cols, merged_.indptr.data(), merged_.indices.data(),
                         nullptr};
  }
  NewRowsFilter(const NewRowsFilter&) = delete;
  NewRowsFilter& operator=(const NewRowsFilter&) = delete;

  const Filter& get() const { return *filter_; }

 private:
  const Filter* filter_;
  Filter own_;
  CsrMatrix<float> merged_;
};

/// The exclusive id limit of a partial fit that may grow `current` rows by `max_growth`
/// (capped at the largest Index). Throws InputError when max_growth is negative.
inline Index growth_limit(Index current, Index max_growth, const char* context) {
  if (max_growth < 0) {
    raise<InputError>(context, ": max_growth must be >= 0 (got ", max_growth, ")");
  }
  const std::int64_t limit = static_cast<std::int64_t>(current) + max_growth;
  return static_cast<Index>(std::min<std::int64_t>(limit, std::numeric_limits<Index>::max()));
}

/// Validates member indices against [0, n_users).
inline void check_users(Span<const Index> users, Index n_users, const char* context) {
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (users[i] < 0 || users[i] >= n_users) {
      raise<InputError>(context, ": user at position ", i, " out of range (got ", users[i],
                        ", expected 0 <= user < ", n_users, ")");
    }
  }
}

/// Validates the arguments of a model's score(users, benefits, out): equal lengths, members in
/// [0, n_users), benefits in [0, n_benefits). `model` names the class in messages.
inline void check_score_pairs(Span<const Index> users, Span<const Index> benefits, Span<float> out,
                              Index n_users, Index n_benefits, const char* model) {
  if (users.size() != benefits.size() || out.size() != users.size()) {
    raise<InputError>(model, "::score: users, benefits and out must have equal lengths (got ",
                      users.size(), ", ", benefits.size(), ", ", out.size(), ")");
  }
  const std::string context = concat(model, "::score");
  check_users(users, n_users, context.c_str());
  for (std::size_t i = 0; i < benefits.size(); ++i) {
    if (benefits[i] < 0 || benefits[i] >= n_benefits) {
      raise<InputError>(context, ": benefit at position ", i, " out of range (got ", benefits[i],
                        ", expected 0 <= benefit < ", n_benefits, ")");
    }
  }
}

/// Validates a model's set_ids(users, benefits): each map empty or holding exactly n_users /
/// n_benefits ids.
inline void check_id_maps(const IdMap& users, const IdMap& benefits, Index n_users,
                          Index n_benefits, const char* model) {
  if (users.size() != 0 && users.size() != n_users) {
    raise<InputError>(model, "::set_ids: user id map holds ", users.size(), " ids (expected ",
                      n_users, ")");
  }
  if (benefits.size() != 0 && benefits.size() != n_benefits) {
    raise<InputError>(model, "::set_ids: benefit id map holds ", benefits.size(), " ids (expected ",
                      n_benefits, ")");
  }
}

/// Fused score + filter + partial sort. `score_row(position, user, out)` writes the scores of
/// all n_benefits benefits for users[position] into `out`; it is called concurrently from
/// several threads and must only read shared state.
template <class ScoreRow>
TopK batch_top_k(Span<const Index> users, int n, Index n_benefits, const Filter& filter,
                 int num_threads, ScoreRow&& score_row) {
  if (n < 0) raise<InputError>("recommend: n must be >= 0 (got ", n, ")");
  const auto rows = static_cast<Index>(users.size());
  filter.validate(rows, n_benefits);
  const int threads = resolve_num_threads(num_threads);
  // Results are never wider than the catalog: a huge n cannot allocate rows x n.
  n = static_cast<int>(std::min<Index>(n, n_benefits));
  const int k = n;
  TopK out;
  out.rows = rows;
  out.k = n;
  out.ids.assign(static_cast<std::size_t>(rows) * static_cast<std::size_t>(n), -1);
  out.scores.assign(out.ids.size(), -std::numeric_limits<float>::infinity());
  if (rows == 0 || n == 0) return out;

  // Global masks are shared; row masks are applied per member by marking scores.
  std::vector<std::uint8_t> global_ok(static_cast<std::size_t>(n_benefits),
                                      filter.restricts() ? 0 : 1);
  for (Index b : filter.allow) global_ok[static_cast<std::size_t>(b)] = 1;
  for (Index b : filter.exclude) global_ok[static_cast<std::size_t>(b)] = 0;

  struct Scratch {
    std::vector<float> scores;
    std::vector<std::uint8_t> allowed;  // eligibility allow-mode stamp
    std::vector<std::pair<float, Index>> heap;
  };
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  constexpr float kSkip = -std::numeric_limits<float>::infinity();
  // Better = higher score, then lower index; the heap keeps the worst kept item on top.
  auto better = [](const std::pair<float, Index>& a, const std::pair<float, Index>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  parallel_for(
      0, rows, threads,
      [&](Offset r, int thread) {
        Scratch& s = scratch[static_cast<std::size_t>(thread)];
        s.scores.resize(static_cast<std::size_t>(n_benefits));
        float* scores = s.scores.data();
        const auto row = static_cast<Index>(r);
        score_row(row, users[static_cast<std::size_t>(r)], scores);
        if (filter.exclude_rows.rows > 0) {
          for (Offset e = filter.exclude_rows.row_begin(row); e < filter.exclude_rows.row_end(row);
               ++e) {
            scores[filter.exclude_rows.indices[e]] = kSkip;
          }
        }
        const bool allow_mode = filter.eligibility.rows > 0 && !filter.eligibility_blocks;
        if (filter.eligibility.rows > 0) {
          if (allow_mode) {
            s.allowed.assign(static_cast<std::size_t>(n_benefits), 0);
            for (Offset e = filter.eligibility.row_begin(row); e < filter.eligibility.row_end(row);
                 ++e) {
              s.allowed[static_cast<std::size_t>(filter.eligibility.indices[e])] = 1;
            }
          } else {
            for (Offset e = filter.eligibility.row_begin(row); e < filter.eligibility.row_end(row);
                 ++e) {
              scores[filter.eligibility.indices[e]] = kSkip;
            }
          }
        }
        s.heap.clear();
        for (Index b = 0; b < n_benefits; ++b) {
          const float v = scores[b];
          if (!global_ok[static_cast<std::size_t>(b)] || std::isnan(v) || v == kSkip) continue;
          if (allow_mode && !s.allowed[static_cast<std::size_t>(b)]) continue;
          const std::pair<float, Index> item(v, b);
          if (static_cast<int>(s.heap.size()) < k) {
            s.heap.push_back(item);
            std::push_heap(s.heap.begin(), s.heap.end(), better);
          } else if (better(item, s.heap.front())) {
            std::pop_heap(s.heap.begin(), s.heap.end(), better);
            s.heap.back() = item;
            std::push_heap(s.heap.begin(), s.heap.end(), better);
          }
        }
        std::sort_heap(s.heap.begin(), s.heap.end(), better);
        const std::size_t base = static_cast<std::size_t>(r) * static_cast<std::size_t>(n);
        for (std::size_t i = 0; i < s.heap.size(); ++i) {
          out.ids[base + i] = s.heap[i].second;
          out.scores[base + i] = s.heap[i].first;
        }
      },
      Schedule::dynamic, 64);
  return out;
}

}  // namespace detail
}  // namespace perkrec
