// Timing building blocks of the preference model. The BG/NBD repurchase model and the
// Nelder-Mead minimizer it used to define here now live in models/purchase.hpp, shared with
// the lifetime-value model (models/clv.hpp): one BG/NBD in the library. This header is kept so
// that code including it keeps compiling.
#pragma once

#include "perkrec/models/purchase.hpp"
