// XXH3 compiled for scalar code only, in its own namespace: the reference
// the tests check RecordChecksum's vectorised paths against.
#ifndef RECMAP_TESTS_SCALAR_XXH3_H_
#define RECMAP_TESTS_SCALAR_XXH3_H_

#include <cstddef>
#include <cstdint>

namespace recmap::testing {

// XXH3_64bits_withSeed(data, len, seed), computed by XXH3's scalar path.
uint64_t ScalarXxh3(const void* data, size_t len, uint64_t seed);

}  // namespace recmap::testing

#endif  // RECMAP_TESTS_SCALAR_XXH3_H_
