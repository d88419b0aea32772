// Definitions for interaction_matrix.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "perkrec/core/threading.hpp"
#include "perkrec/features/interaction_matrix.hpp"

namespace perkrec {

PERKREC_INLINE void InteractionParams::validate() const {
  bool any = false;
  for (int t = 0; t < kNumEventTypes; ++t) {
    const float w = event_weights[static_cast<std::size_t>(t)];
    if (!std::isfinite(w) || w < 0) {
      detail::raise<ConfigError>("InteractionParams: event_weights[",
                                 to_string(static_cast<EventType>(t)),
                                 "] must be finite and >= 0 (got ", w, ")");
    }
    any = any || w > 0;
  }
  if (!any) detail::raise<ConfigError>("InteractionParams: event_weights are all 0");
  params::validate_fields(*this, "InteractionParams");
}

PERKREC_INLINE InteractionMatrix build_interaction_matrix(const EventLog& log,
                                                          const InteractionParams& params) {
  params.validate();
  const Index n_users = log.n_users();
  const Index n_benefits = log.n_benefits();
  const int threads = resolve_num_threads(params.num_threads);
  const Timestamp cut_time = params.cut_time;
  const Timestamp reference = cut_time != kNoTime ? cut_time : log.max_time();
  const double decay_per_second =
      params.half_life_days > 0
          ? 1.0 / (params.half_life_days * static_cast<double>(kSecondsPerDay))
          : 0.0;
  const Span<const Index> benefit = log.benefits();
  const Span<const std::uint8_t> type = log.types();
  const Span<const Timestamp> time = log.timestamps();
  const auto& w = params.event_weights;

  auto counts = [&](Offset e) {
    return benefit[static_cast<std::size_t>(e)] >= 0 && w[type[static_cast<std::size_t>(e)]] > 0 &&
           (cut_time == kNoTime || time[static_cast<std::size_t>(e)] < cut_time);
  };

  // Per-thread sparse accumulators: `mark[b] == u` says b was seen for member u.
  struct Accumulator {
    std::vector<Index> mark;
    std::vector<double> value;
    std::vector<Index> touched;
  };
  std::vector<Accumulator> acc(static_cast<std::size_t>(threads));

  InteractionMatrix m;
  m.rows = n_users;
  m.cols = n_benefits;
  m.indptr.assign(static_cast<std::size_t>(n_users) + 1, 0);
  // Pass 1: distinct benefits per member.
  parallel_for(
      0, n_users, threads,
      [&](Offset user, int thread) {
        Accumulator& a = acc[static_cast<std::size_t>(thread)];
        if (a.mark.empty()) a.mark.assign(static_cast<std::size_t>(n_benefits), -1);
        const auto u = static_cast<Index>(user);
        Offset distinct = 0;
        for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
          if (!counts(e)) continue;
          Index& mark = a.mark[static_cast<std::size_t>(benefit[static_cast<std::size_t>(e)])];
          if (mark != u) {
            mark = u;
            ++distinct;
          }
        }
        m.indptr[static_cast<std::size_t>(u) + 1] = distinct;
      },
      Schedule::dynamic, 512);
  for (std::size_t u = 0; u < static_cast<std::size_t>(n_users); ++u)
    m.indptr[u + 1] += m.indptr[u];
  m.indices.resize(static_cast<std::size_t>(m.indptr.back()));
  m.data.resize(m.indices.size());
  for (Accumulator& a : acc) std::fill(a.mark.begin(), a.mark.end(), -1);

  // Pass 2: accumulate and write each row with sorted columns.
  const bool use_max = params.combine == InteractionParams::Combine::max;
  parallel_for(
      0, n_users, threads,
      [&](Offset user, int thread) {
        Accumulator& a = acc[static_cast<std::size_t>(thread)];
        if (a.mark.empty()) a.mark.assign(static_cast<std::size_t>(n_benefits), -1);
        if (a.value.empty()) a.value.assign(static_cast<std::size_t>(n_benefits), 0.0);
        const auto u = static_cast<Index>(user);
        a.touched.clear();
        for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
          if (!counts(e)) continue;
          const auto k = static_cast<std::size_t>(e);
          const auto b = static_cast<std::size_t>(benefit[k]);
          double c = w[type[k]];
          if (decay_per_second > 0) {
            c *= std::exp2(-static_cast<double>(reference - time[k]) * decay_per_second);
          }
          if (a.mark[b] != u) {
            a.mark[b] = u;
            a.value[b] = c;
            a.touched.push_back(static_cast<Index>(b));
          } else if (use_max) {
            a.value[b] = std::max(a.value[b], c);
          } else {
            a.value[b] += c;
          }
        }
        std::sort(a.touched.begin(), a.touched.end());
        auto out = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(u)]);
        for (Index b : a.touched) {
          m.indices[out] = b;
          m.data[out] = static_cast<float>(a.value[static_cast<std::size_t>(b)]);
          ++out;
        }
      },
      Schedule::dynamic, 512);
  return m;
}

}  // namespace perkrec
