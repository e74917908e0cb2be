// A model of a store's contents for the persisted-index tests: the writes
// they make and the check that a store answers exactly as the model says.
#ifndef RECMAP_TESTS_INDEX_MODEL_H_
#define RECMAP_TESTS_INDEX_MODEL_H_

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "recmap/store.h"
#include "test_util.h"

namespace recmap::testing {

// id -> latest value, or nullopt if the latest record is a delete.
using Model = std::map<uint64_t, std::optional<std::string>>;

// Writes `n` operations through `w` (a Store or a Writer): puts over ids
// [0, n/2] (so ids are overwritten) and every seventh a delete.
template <typename W>
void Fill(W& w, Model& m, uint64_t n, uint64_t salt) {
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t id = (i * 2654435761u + salt) % (n / 2 + 1);
    if (i % 7 == 3) {
      REQUIRE(w.Delete(id).ok());
      m[id] = std::nullopt;
    } else {
      std::string v = Payload(salt, i, 150);
      REQUIRE(w.Put(id, v).ok());
      m[id] = v;
    }
  }
}

// Get, Stats and ForEachLive of `s` agree with `m`, byte for byte.
inline void CheckModel(Store& s, const Model& m) {
  uint64_t live = 0;
  for (const auto& [id, v] : m) {
    absl::StatusOr<std::string_view> got = s.Get(id);
    INFO("id " << id << ": " << got.status().ToString());
    if (v.has_value()) {
      ++live;
      REQUIRE(got.ok());
      REQUIRE(*got == *v);
    } else {
      REQUIRE(got.status().code() == absl::StatusCode::kNotFound);
    }
  }
  CHECK(s.Get(uint64_t{1} << 50).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(s.Stats().live_records == live);
  uint64_t seen = 0;
  REQUIRE(s.ForEachLive([&](const RecordView& r) {
             auto it = m.find(r.id);
             REQUIRE(it != m.end());
             REQUIRE(it->second.has_value());
             REQUIRE(r.value == *it->second);
             ++seen;
             return true;
           }).ok());
  CHECK(seen == live);
}

}  // namespace recmap::testing

#endif  // RECMAP_TESTS_INDEX_MODEL_H_
