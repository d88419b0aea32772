// Log, progress and interrupt callbacks for long work (training, simulation).
//
// perkrec never prints. Long-running calls take a `Callbacks` and report through it:
//  - `log(level, message)`: human-readable notes (Python routes them to `logging`);
//  - `progress(stage, done, total)`: work done so far (Python draws a progress bar);
//  - `should_stop()`: polled between chunks of work; returning true stops the call, which then
//    throws perkrec::Interrupted and leaves its object unchanged (Python maps it to
//    KeyboardInterrupt, so Ctrl-C stops training).
// All three are invoked only on the thread that made the call, never inside a parallel
// region, so they need no locking and may take the Python GIL.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

enum class LogLevel { debug, info, warning };

/// Callbacks for one long-running call; every member may be empty.
struct Callbacks {
  std::function<void(LogLevel level, const std::string& message)> log;
  std::function<void(const std::string& stage, Offset done, Offset total)> progress;
  std::function<bool()> should_stop;
};

/// Drives Callbacks for one stage of work: `advance` reports progress and honours
/// `should_stop`. Use it on the calling thread between parallel chunks.
class ProgressReporter {
 public:
  ProgressReporter(const Callbacks& callbacks, std::string stage, Offset total)
      : callbacks_(callbacks), stage_(std::move(stage)), total_(total) {
    report();
  }

  /// Adds `n` units of finished work, reports it, and throws Interrupted when the caller asks
  /// to stop.
  void advance(Offset n) {
    done_ += n;
    report();
    check_stop();
  }

  /// Throws Interrupted when `should_stop()` returns true.
  void check_stop() const {
    if (callbacks_.should_stop && callbacks_.should_stop()) {
      detail::raise<Interrupted>(stage_, ": interrupted by the caller after ", done_, " of ",
                                 total_);
    }
  }

  void log(LogLevel level, const std::string& message) const {
    if (callbacks_.log) callbacks_.log(level, message);
  }

  Offset done() const { return done_; }

 private:
  void report() const {
    if (callbacks_.progress) callbacks_.progress(stage_, done_, total_);
  }

  const Callbacks& callbacks_;
  std::string stage_;
  Offset total_ = 0;
  Offset done_ = 0;
};

}  // namespace perkrec
