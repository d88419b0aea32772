// Basic vocabulary types: index widths, timestamps, a non-owning span, and CSR matrices.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "perkrec/core/error.hpp"

namespace perkrec {

/// Dense index of a member (user) or benefit. Member and benefit counts are < 2^31.
using Index = std::int32_t;
/// Position in an event or non-zero array (may exceed 2^31).
using Offset = std::int64_t;
/// Seconds since the Unix epoch, UTC. Valid event timestamps are >= 0.
using Timestamp = std::int64_t;

/// Marks "no benefit" (an order placed without one) in benefit columns.
inline constexpr Index kNoBenefit = -1;
/// Marks an absent timestamp in optional parameters.
inline constexpr Timestamp kNoTime = std::numeric_limits<Timestamp>::min();
inline constexpr Timestamp kSecondsPerDay = 86400;
inline constexpr Timestamp kSecondsPerHour = 3600;
/// The range of times perkrec accepts from outside (request lines, files, configs):
/// [1900-01-01T00:00:00Z, 2200-01-01T00:00:00Z). It lies inside pandas' nanosecond range, and
/// adding any period perkrec works with (days to decades) cannot overflow.
inline constexpr Timestamp kMinTimestamp = -2208988800;
inline constexpr Timestamp kMaxTimestamp = 7258118400;

/// A non-owning view of `size` contiguous elements (std::span is C++20).
template <class T>
class Span {
 public:
  constexpr Span() = default;
  constexpr Span(T* data, std::size_t size) : data_(data), size_(size) {}
  template <class U, class A, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  Span(std::vector<U, A>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit by design
  template <class U, class A,
            class = std::enable_if_t<std::is_convertible_v<const U (*)[], T (*)[]>>>
  Span(const std::vector<U, A>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT

  constexpr T* data() const { return data_; }
  constexpr std::size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr T& operator[](std::size_t i) const { return data_[i]; }
  constexpr T* begin() const { return data_; }
  constexpr T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A borrowed compressed-sparse-row matrix: row r holds columns indices[indptr[r]:indptr[r+1]]
/// with values data[...]. Used for members x benefits interactions and eligibility masks.
/// Nothing is copied; the caller keeps the arrays alive while the view is used.
template <class T>
struct CsrView {
  Index rows = 0;
  Index cols = 0;
  const Offset* indptr = nullptr;  ///< rows + 1 entries, indptr[0] == 0, non-decreasing
  const Index* indices = nullptr;  ///< nnz entries in [0, cols)
  const T* data = nullptr;         ///< nnz entries (may be null for a pattern-only matrix)

  Offset nnz() const { return rows > 0 ? indptr[rows] : 0; }
  Offset row_begin(Index r) const { return indptr[r]; }
  Offset row_end(Index r) const { return indptr[r + 1]; }

  /// Checks the structure (and finiteness of floating data). `what` names the argument in
  /// messages. When `require_sorted`, column indices must strictly increase within each row.
  /// Throws InputError.
  void validate(const char* what, bool require_sorted = false) const;
};

/// An owned CSR matrix; `view()` lends it to functions taking CsrView.
template <class T>
struct CsrMatrix {
  Index rows = 0;
  Index cols = 0;
  std::vector<Offset> indptr = std::vector<Offset>(1, 0);
  std::vector<Index> indices;
  std::vector<T> data;

  Offset nnz() const { return static_cast<Offset>(indices.size()); }
  CsrView<T> view() const { return {rows, cols, indptr.data(), indices.data(), data.data()}; }
};

/// A CsrView over arrays whose row offsets are 32-bit — scipy's default int32 indptr, and
/// many C libraries'. The rows + 1 offsets are widened once into this object; indices and data
/// are lent, not copied. Keep it alive while its view() is in use:
///   perkrec::CsrView32<float> m(rows, cols, indptr32, indices, data);
///   model.fit(m.view());
template <class T>
class CsrView32 {
 public:
  CsrView32(Index rows, Index cols, const std::int32_t* indptr, const Index* indices, const T* data)
      : rows_(rows), cols_(cols), indices_(indices), data_(data) {
    if (rows > 0 && indptr != nullptr) offsets_.assign(indptr, indptr + rows + 1);
  }
  CsrView<T> view() const {
    return {rows_, cols_, offsets_.empty() ? nullptr : offsets_.data(), indices_, data_};
  }

 private:
  Index rows_, cols_;
  std::vector<Offset> offsets_;
  const Index* indices_;
  const T* data_;
};

template <class T>
void CsrView<T>::validate(const char* what, bool require_sorted) const {
  if (rows < 0 || cols < 0) {
    detail::raise<InputError>(what, ": negative shape (got ", rows, " x ", cols, ")");
  }
  if (rows == 0) return;
  if (indptr == nullptr) detail::raise<InputError>(what, ": indptr is null");
  if (indptr[0] != 0) {
    detail::raise<InputError>(what, ": indptr[0] must be 0 (got ", indptr[0], ")");
  }
  for (Index r = 0; r < rows; ++r) {
    if (indptr[r + 1] < indptr[r]) {
      detail::raise<InputError>(what, ": indptr decreases at row ", r, " (", indptr[r], " -> ",
                                indptr[r + 1], ")");
    }
  }
  const Offset nnz = indptr[rows];
  if (nnz > 0 && indices == nullptr) detail::raise<InputError>(what, ": indices is null");
  for (Index r = 0; r < rows; ++r) {
    Index previous = -1;
    for (Offset k = indptr[r]; k < indptr[r + 1]; ++k) {
      const Index c = indices[k];
      if (c < 0 || c >= cols) {
        detail::raise<InputError>(what, ": column index out of range at row ", r, " (got ", c,
                                  ", expected 0 <= index < ", cols, ")");
      }
      if (require_sorted && c <= previous) {
        detail::raise<InputError>(what, ": column indices of row ", r,
                                  " are not strictly increasing (", previous, " then ", c, ")");
      }
      previous = c;
    }
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (data != nullptr) {
      for (Offset k = 0; k < nnz; ++k) {
        if (!std::isfinite(data[k])) {
          detail::raise<InputError>(what, ": non-finite value at position ", k, " (got ", data[k],
                                    ")");
        }
      }
    }
  }
}

}  // namespace perkrec
