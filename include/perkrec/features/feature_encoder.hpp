// FeatureEncoder: sample rows (one per issued benefit: member, benefit, time, attributes) into
// sparse FM rows, one field per declared field, features numbered globally.
//
// The field specification is strict JSON, the same in C++ and Python:
//   {"fields": [{"name": "user", "kind": "id", "min_count": 3},
//               {"name": "threshold", "kind": "numeric", "transform": "quantile", "bins": 6},
//               {"name": "member_history", "kind": "history", "bins": 6,
//                "aggregates": ["member_issued", "member_redemption_rate"]}, ...]}
// (a bare array of fields is accepted too). Field kinds and their keys:
//   categorical / id   name, column (default: name), min_count (>= 0, default 1),
//                      hash_buckets (>= 0, default 0), optional
//       One-hot over the values seen at least min_count times in fit, sorted as strings;
//       feature 0 of the field is "other" (rarer, unseen and missing values). A field with one
//       value on every fit row keeps no values (every row encodes "other": a constant, so a
//       value unseen in fit cannot take a share of the bias away). With
//       hash_buckets > 0 the value's string is hashed (pandas' hash_array: SipHash-2-4 with
//       key "0123456789123456", then a 64-bit mix) into that many features instead.
//   numeric            name, column, transform ("quantile" | "standardize"), bins (>= 0,
//                      default 8), optional
//       quantile: one-hot of the bucket of x among the field's edges (np.quantile, linear
//       interpolation, at the inner points of linspace(0, 1, bins + 1), then unique), found as
//       searchsorted(edges, x, side="right"); non-finite x goes to the extra last bucket
//       (size = edges + 2). standardize: one feature with value (x - mean) / std (population
//       std, 1 when 0); a non-finite x is an InputError.
//   history            name, bins (>= 0, default 6), aggregates (default: all of
//                      history_aggregate_names()), continuous (default false), optional
//       Per-sample aggregates of the EventLog computed from events STRICTLY BEFORE the sample's
//       timestamp (an event at the same second is not visible): issued / claimed / redeemed
//       counts per member, per member x benefit kind, per member x face-value band and per
//       benefit, the member's orders, and the smoothed rates (redeemed + 0.1) / (issued + 1)
//       and (claimed + 0.1) / (issued + 1) per scope; per member x benefit channel also the
//       viewed count and the view rate (how often the member opens what comes through that
//       channel: the strongest member x benefit signal in the simulator); the member's order
//       timing: order_days_since (days from the last order, in whole minutes; 100000 without
//       one), order_interval_days (mean days between the member's orders; 100000 with fewer
//       than two) and order_overdue (days since / interval, 0 with fewer than two orders): how
//       likely an organic order in the benefit's window is. Each aggregate is
//       quantile-bucketed into `bins` (as numeric fields), or with bins = 0 given as one feature of
//       value log1p(x). With `continuous: true` (history and behavior; default false) each
//       aggregate also gets one feature of value (slog1p(x) - mean) / std after its buckets
//       (slog1p(x) = sign(x) log1p(|x|); mean and population std of slog1p(x) over the fit
//       samples, std 1 when 0; with bins = 0 it replaces the raw log1p value): the buckets give
//       the shape, the value orders samples within a bucket (what a ranking of one member's
//       benefits needs when most of them share a bucket).
//   behavior           name, aggregates (default: all of behavior_aggregate_names()), levels
//                      (ItemCatalog level names, default none), actions (default ["purchase"]),
//                      half_life_days (> 0, default 28), bins (>= 0, default 6), continuous
//                      (default false), optional
//       Aggregates of what the member bought or browsed STRICTLY BEFORE the sample's time, matched
//       to the benefit's items and to their `levels` (features/behavior_features.hpp: counts,
//       quantity, spend, decayed counts, days since last, share of wallet, member totals, the
//       items' popularity), one column per behavior_column_names() entry, each bucketed like a
//       history aggregate (bins = 0: log1p(x); `continuous` as for history). Needs BehaviorData
//       (log, item catalog, benefit items) at fit and transform; an optional behaviour field is
//       dropped by fit without it. A level or action the data lack is a ConfigError naming the
//       pointer
//       (`/fields/2/levels/0`).
//   behavior_cf        name, actions (default ["purchase"]), factors (default 16), iterations
//                      (10), regularization (0.1), alpha (1), cg_steps (3), half_life_days (28),
//                      weight_half_life_days (0), seed (42), as_of (epoch seconds, optional),
//                      bins (>= 0, default 0), optional
//       Item-level collaborative signal (features/behavior_cf.hpp): fit trains implicit ALS on
//       the member x item matrix of the actions' events STRICTLY BEFORE as_of, which defaults to
//       the EARLIEST fit sample's time, so no behaviour at or after any training sample enters the
//       item factors (an as_of later than the earliest fit sample is an InputError: it would);
//       each sample then gets cf_dot and cf_cosine between the mean factors of the benefit's
//       items and the recency-decayed mean factors of the items the member touched strictly
//       before the sample's time (0 without either). Both are continuous: one feature of value
//       (slog1p(x) - mean) / std each (as `continuous: true` of behavior fields), after `bins`
//       quantile buckets when bins > 0. The item factors are stored with the encoder (to_json).
//       Needs BehaviorData at fit and transform (the same items); an optional field is dropped
//       by fit without it.
// Unknown keys or kinds, bad values and duplicate names are ConfigError naming the JSON pointer
// (`/fields/3/bins`). `optional: true` marks a field that fit() drops (listed in
// dropped_fields()) when its column is absent; any other missing column is an InputError.
//
// Samples come as SampleColumns: named int64, double (NaN = missing) and categorical columns
// (codes into a per-column string dictionary, -1 = missing: what pandas' factorize gives; an
// integer column read by a categorical field is read as its decimal strings). A missing value is
// "other" for a vocabulary field, and hashed as the string "nan" (or its dictionary string).
// History fields need the int64 columns "user", "benefit" and "timestamp", an EventLog with the
// same member and benefit indices, and the benefits' kind names and face values
// (set_benefits, with the channel names for the member x channel aggregates); the kind (channel)
// code is the rank of the kind (channel) among the sorted distinct names, the band is
// searchsorted([0, 2, 5, 10, 20], face_value, side="right").
//
// Behaviour fields need the int64 columns "user", "benefit" and "timestamp" too, the member and
// benefit indices matching the BehaviorLog's members and the BenefitItems' benefits.
//
// Example:
//   perkrec::FeatureEncoder enc(perkrec::FeatureSpec::from_json(spec_text));
//   enc.set_benefits(kind_names, face_values);
//   enc.fit(train_samples, &log);
//   perkrec::CsrMatrix<float> X = enc.transform(test_samples, &log);
//   fm.fit(X.view(), target, enc.feature_fields(), enc.n_fields());
//   // A service reading the encoder stored with an FM by the Python package:
//   perkrec::FeatureEncoder served = perkrec::FeatureEncoder::from_fm_metadata(fm.metadata());
//
// Output: CsrMatrix<float> (int64 indptr, int32 column indices, float32 values), every row
// holding one entry per categorical / numeric field, one per history aggregate and one per
// behaviour column (two with bins > 0 and continuous; behavior_cf fields are continuous), in field
// order (explicit zeros kept), so the matrix is identical to the Python numpy encoder's. Cost: fit
// O(n log n) per quantile field; transform O(n x fields) plus, for history and behavior fields, O(n
// log n + events) (behaviour: see features/behavior_features.hpp). Parallel over rows (and members
// for history and behaviour); the output does not depend on the thread count. Thread safety: fit /
// set_benefits need exclusive access; transform, history and the accessors are const and safe from
// any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/features/behavior_cf.hpp"
#include "perkrec/features/behavior_features.hpp"

namespace perkrec {

/// The names of the history aggregates, in their canonical order (28 names: 12 counts,
/// member_ordered, 8 rates, then member_channel_{issued, viewed, claimed, redeemed} and
/// member_channel_{view_rate, claim_rate, redemption_rate}).
PERKREC_INLINE const std::vector<std::string>& history_aggregate_names();

namespace detail {
/// pandas.util.hash_array of one string (SipHash-2-4 keyed "0123456789123456", then a mix).
PERKREC_INLINE std::uint64_t pandas_string_hash(const std::string& s);
/// np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])) of finite `x` (reordered).
PERKREC_INLINE std::vector<double> numpy_quantile_edges(std::vector<double>& x, int bins);
}  // namespace detail

/// The face-value band edges used by history fields (searchsorted side="right").
inline constexpr double kFaceValueBands[5] = {0.0, 2.0, 5.0, 10.0, 20.0};

/// One declared field (see the file comment). `raw` keeps the field's JSON as given, so a
/// specification written back is the one that was read.
struct FeatureField {
  enum class Kind { categorical, id, numeric, history, behavior, behavior_cf };
  enum class Transform { quantile, standardize };
  std::string name;
  Kind kind = Kind::categorical;
  std::string column;                         ///< input column (default: name)
  int min_count = 1;                          ///< categorical / id: >= 0
  int hash_buckets = 0;                       ///< categorical / id: >= 0; 0 = vocabulary
  Transform transform = Transform::quantile;  ///< numeric
  int bins = 8;                               ///< numeric (default 8) / history (default 6): >= 0
  std::vector<int> aggregates;                ///< history: indices into history_aggregate_names();
                                              ///< behavior: into behavior_aggregate_names()
  std::vector<std::string> levels;            ///< behavior: ItemCatalog levels to match on
  std::vector<std::string> actions = {"purchase"};  ///< behavior, behavior_cf: actions read
  double half_life_days = 28.0;                     ///< behavior: decay of decayed_count; > 0
  bool continuous = false;  ///< history / behavior: also (slog1p(x) - mean) / std per aggregate
                            ///< (always true for behavior_cf)
  BehaviorCFParams cf;      ///< behavior_cf: the signal's params (cf.actions == actions)
  Timestamp cf_as_of = kNoTime;  ///< behavior_cf: the cut time; kNoTime = earliest fit sample
  bool optional = false;         ///< dropped by fit when its column is absent
  Json raw;                      ///< the field's JSON as given
};

/// A field specification. Throws ConfigError naming the JSON pointer of any bad entry.
struct FeatureSpec {
  std::vector<FeatureField> fields;
  /// From `{"fields": [...]}` or a bare array of fields.
  static FeatureSpec from_json(const std::string& text);
  static FeatureSpec from_json(const Json& value, const std::string& pointer);
  /// The fields as a JSON array (each as given).
  Json to_json() const;
};

/// Named sample columns (borrowed; the caller keeps them alive during fit / transform).
struct SampleColumns {
  struct Integer {
    std::string name;
    Span<const std::int64_t> values;
  };
  struct Numeric {
    std::string name;
    Span<const double> values;  ///< NaN = missing
  };
  struct Categorical {
    std::string name;
    Span<const std::int32_t> codes;       ///< index into dictionary; -1 = missing
    std::vector<std::string> dictionary;  ///< the string of each code (duplicates allowed)
    /// Optional, one flag per dictionary entry: 1 = the entry is a missing value (pandas'
    /// astype(str) keeps it missing), which vocabulary fields treat like code -1 (not counted,
    /// "other") while hashed fields hash its string (numpy's astype(str): "nan", "None").
    std::vector<std::uint8_t> missing;
  };
  Offset rows = 0;
  std::vector<Integer> integers;
  std::vector<Numeric> numerics;
  std::vector<Categorical> categoricals;

  const Integer* find_integer(const std::string& name) const;
  const Numeric* find_numeric(const std::string& name) const;
  const Categorical* find_categorical(const std::string& name) const;
  bool has(const std::string& name) const;
};

/// The behaviour inputs of behavior fields (borrowed; all three index the same items, and the
/// log the same members as the samples).
struct BehaviorData {
  const BehaviorLog* log = nullptr;
  const ItemCatalog* items = nullptr;
  const BenefitItems* benefit_items = nullptr;
  bool complete() const { return log != nullptr && items != nullptr && benefit_items != nullptr; }
};

/// The behaviour parameters of a behavior field (its aggregates, levels, actions, half-life).
PERKREC_INLINE BehaviorFeatureParams behavior_params(const FeatureField& field,
                                                     int num_threads = 0);

/// The history aggregates of each sample, as columns (see FeatureEncoder::history).
struct HistoryTable {
  Offset rows = 0;
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;
};

/// Per (benefit, event type: issued, claimed, redeemed) sorted event times of one log: what
/// the benefit scope of history fields reads. FeatureEncoder::transform builds it on each call
/// (O(events)); a caller transforming many small batches against the same log builds it once
/// (FeatureEncoder::history_index) and passes it. Borrows the log.
struct HistoryIndex {
  const EventLog* log = nullptr;
  std::vector<Offset> key_start;  ///< n_benefits x 3 + 1
  std::vector<Timestamp> key_time;
  static HistoryIndex build(const EventLog& log, Index n_benefits, int num_threads = 0);
};

class FeatureEncoder {
 public:
  FeatureEncoder() = default;
  /// `num_threads`: 0 = OpenMP default; the output never depends on it.
  explicit FeatureEncoder(FeatureSpec spec, int num_threads = 0);

  /// The benefits' kind names and face values (one per benefit index), needed by history
  /// fields. Throws InputError when the lengths differ.
  /// `channel_names` (optional: empty = one channel) feed the member x channel aggregates.
  void set_benefits(const std::vector<std::string>& kind_names, Span<const double> face_values,
                    const std::vector<std::string>& channel_names = {});
  /// The same from integer codes already computed (kind code, face-value band and, optionally,
  /// channel code per benefit).
  void set_benefit_codes(std::vector<std::int64_t> kind, std::vector<std::int64_t> band,
                         std::vector<std::int64_t> channel = {});

  /// Learns vocabularies, quantile edges and scalings. `events` is needed when a history
  /// field is declared, `behavior` when a behavior field is (an optional one is dropped without
  /// it). Throws InputError (missing column, NaN in a standardized column, benefit out of
  /// range) or ConfigError (a behaviour level or action the data lack) before changing anything.
  void fit(const SampleColumns& samples, const EventLog* events = nullptr,
           const BehaviorData* behavior = nullptr);

  /// Sparse rows (samples x n_features). `fields` (names) restricts the output to some fields;
  /// columns keep their global numbering. Unknown names are an InputError. `behavior` is needed
  /// when a behavior field is selected.
  /// `history_index`: optional, built by history_index(*events) (ignored when it was built
  /// for another log); the output is the same with or without it.
  CsrMatrix<float> transform(const SampleColumns& samples, const EventLog* events = nullptr,
                             const std::vector<std::string>* fields = nullptr,
                             const BehaviorData* behavior = nullptr,
                             const HistoryIndex* history_index = nullptr) const;
  /// The benefit-scope index of `events` for transform (needs set_benefits or a fitted state).
  HistoryIndex history_index(const EventLog& events) const;

  /// The aggregates named in `names` (all when empty) of every sample, strictly before its
  /// timestamp. Needs set_benefits (or codes) first.
  HistoryTable history(const SampleColumns& samples, const EventLog& events,
                       const std::vector<std::string>& names = {}) const;

  bool fitted() const { return fitted_; }
  const FeatureSpec& spec() const { return spec_; }
  int n_fields() const { return static_cast<int>(spec_.fields.size()); }
  /// Features per field; throws InputError when not fitted.
  std::vector<Index> field_sizes() const;
  Index n_features() const;
  /// The field of every feature column.
  std::vector<std::int32_t> feature_fields() const;
  /// n_fields + 1 offsets of the fields' first features.
  std::vector<Offset> field_offsets() const;
  /// Names of optional fields dropped at fit because their column was absent.
  const std::vector<std::string>& dropped_fields() const { return dropped_; }
  void set_num_threads(int num_threads);
  int num_threads() const { return num_threads_; }

  /// The fitted state as JSON: {"fields", "state", "benefit_kind", "benefit_band"} (the
  /// format the Python package stores in FM metadata; "dropped_fields" when any).
  std::string to_json() const;
  /// Reads to_json's output strictly; throws ModelFormatError naming the JSON pointer.
  static FeatureEncoder from_json(const std::string& text);
  static FeatureEncoder from_json(const Json& value, const std::string& pointer);
  /// The encoder stored in an FM's metadata string ({"encoder": {...}}); throws
  /// ModelFormatError when there is none or it is malformed.
  static FeatureEncoder from_fm_metadata(const std::string& metadata);

  /// Per-field fitted state (see to_json).
  struct FieldState {
    Index size = 0;
    std::vector<std::string> vocab;              ///< categorical / id without hashing
    std::vector<double> edges;                   ///< numeric quantile
    double mean = 0.0, std = 1.0;                ///< numeric standardize
    std::vector<std::vector<double>> agg_edges;  ///< history / behavior, bins > 0
    std::vector<Index> agg_offsets;              ///< history / behavior, bins > 0: columns + 1
    std::vector<double> agg_mean, agg_std;       ///< history / behavior, continuous: per column
    BehaviorCF cf;                               ///< behavior_cf: the fitted item factors
  };
  const std::vector<FieldState>& state() const { return state_; }

 private:
  void require_fitted(const char* method) const;
  void index_vocabularies();  // int_vocab_ from state_

  FeatureSpec declared_;  // as constructed; fit keeps spec_ = declared_ less dropped fields
  FeatureSpec spec_;
  std::vector<FieldState> state_;
  /// Per field: the vocabulary's integer values and codes, sorted (lookups of integer columns).
  std::vector<std::vector<std::pair<std::int64_t, Index>>> int_vocab_;
  std::vector<std::string> dropped_;
  std::vector<std::int64_t> benefit_kind_;
  std::vector<std::int64_t> benefit_band_;
  std::vector<std::int64_t> benefit_channel_;  ///< empty: every benefit in channel 0
  bool has_benefits_ = false;
  bool fitted_ = false;
  int num_threads_ = 0;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/features/feature_encoder_impl.hpp"
#endif
