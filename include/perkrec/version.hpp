// perkrec — benefit recommendation for loyalty and membership programs.
// The single source of the library version: CMake, pyproject.toml and the model-file header
// all read it from here.
#pragma once

#define PERKREC_VERSION_MAJOR 0
#define PERKREC_VERSION_MINOR 1
#define PERKREC_VERSION_PATCH 0
#define PERKREC_VERSION_STRING "0.1.0"

namespace perkrec {

/// Library version as "major.minor.patch".
inline constexpr const char* version_string = PERKREC_VERSION_STRING;

}  // namespace perkrec
