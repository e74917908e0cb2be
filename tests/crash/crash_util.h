// Helpers shared by the crash tests: self-verifying payloads (any record
// found in a store can be checked from its id alone), figure printing, and
// bounds for CI versus soak (and sanitizer) runs.
#ifndef RECMAP_TESTS_CRASH_CRASH_UTIL_H_
#define RECMAP_TESTS_CRASH_CRASH_UTIL_H_

#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>

// Prints a problem to stderr at once, prefixed with the test's name (Catch2
// would drop messages attached to assertions that pass later in a cycle).
// Each crash test defines NOTE(msg) as CRASH_NOTE("its-name", msg).
#define CRASH_NOTE(prefix, msg)                                  \
  do {                                                           \
    std::ostringstream os_;                                      \
    os_ << msg;                                                  \
    std::fprintf(stderr, "%s: %s\n", prefix, os_.str().c_str()); \
  } while (0)

namespace recmap::testing {

// RECMAP_SOAK=1 selects the long runs.
inline bool SoakMode() {
  const char* s = std::getenv("RECMAP_SOAK");
  return s != nullptr && *s != '\0' && *s != '0';
}

// The number of cycles (or images) a crash test runs, given its CI count:
// 10x that in soak mode; RECMAP_CRASH_SCALE=P (a percentage, 1..100) runs P%
// of the CI count instead, at least 1. The sanitizer stage of .ci/run sets
// it (CMakePresets.json, asan-ubsan test preset), since a sanitized cycle
// costs several times a plain one; each test still checks that it ran
// exactly the count returned here and prints it in its FIGURES line.
inline uint64_t ScaledCount(uint64_t ci_count) {
  if (SoakMode()) return ci_count * 10;
  const char* s = std::getenv("RECMAP_CRASH_SCALE");
  if (s == nullptr || *s == '\0') return ci_count;
  const uint64_t percent = std::strtoull(s, nullptr, 10);
  if (percent == 0 || percent >= 100) return ci_count;
  return std::max<uint64_t>(1, ci_count * percent / 100);
}

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

// Payload length for `id`: 0..64 KiB, mostly small (6/10 up to 256 bytes,
// 3/10 up to 4 KiB, 1/10 up to 64 KiB), `max` caps it.
inline size_t PayloadLength(uint64_t id, size_t max = 65536) {
  const uint64_t h = Mix64(id ^ 0x5EEDULL);
  const uint64_t pick = h % 10;
  size_t len;
  if (pick < 6) {
    len = (h >> 8) % 257;
  } else if (pick < 9) {
    len = (h >> 8) % 4097;
  } else {
    len = (h >> 8) % 65537;
  }
  return len > max ? len % (max + 1) : len;
}

// The payload stored under `id`.
inline std::string PayloadFor(uint64_t id, size_t max = 65536) {
  std::string s(PayloadLength(id, max), '\0');
  uint64_t x = Mix64(id) | 1;
  for (size_t k = 0; k < s.size(); k += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(s.data() + k, &x, std::min<size_t>(8, s.size() - k));
  }
  return s;
}

inline uint64_t HashBytes(std::string_view v) {
  return XXH3_64bits(v.data(), v.size());
}

// True if `value` is exactly what PayloadFor(id, max) writes.
inline bool PayloadMatches(uint64_t id, std::string_view value,
                           size_t max = 65536) {
  return value == PayloadFor(id, max);
}

// One line on stdout that CI logs keep: "FIGURES <test>: k=v ...".
#define RECMAP_FIGURES(...)              \
  do {                                   \
    std::printf("FIGURES " __VA_ARGS__); \
    std::printf("\n");                   \
    std::fflush(stdout);                 \
  } while (0)

}  // namespace recmap::testing

#endif  // RECMAP_TESTS_CRASH_CRASH_UTIL_H_
