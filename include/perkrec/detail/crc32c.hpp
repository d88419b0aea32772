// CRC32C (Castagnoli), software slicing-by-8. Internal: no API promise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace perkrec::detail {

struct Crc32cTables {
  std::array<std::array<std::uint32_t, 256>, 8> table{};
  constexpr Crc32cTables() {
    constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
      table[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i) {
      for (int t = 1; t < 8; ++t) {
        const std::uint32_t prev = table[t - 1][i];
        table[t][i] = (prev >> 8) ^ table[0][prev & 0xFFu];
      }
    }
  }
};

inline constexpr Crc32cTables kCrc32cTables{};

/// Extends `crc` (0 for a fresh checksum) over `size` bytes.
inline std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) {
  const auto& t = kCrc32cTables.table;
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  while (size >= 8) {
    const std::uint32_t lo =
        (static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24)) ^
        crc;
    crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFu];
  return ~crc;
}

}  // namespace perkrec::detail
