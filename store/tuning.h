// Thresholds and step sizes of the library that a user has no reason to
// choose, kept out of the public Options. The defaults hold for every
// program; a test (or the fuzz corpus generator) replaces them to reach a
// path on a small store, e.g. an index file for a store of a few hundred
// records. Not installed.
#ifndef RECMAP_STORE_TUNING_H_
#define RECMAP_STORE_TUNING_H_

#include <cstdint>

namespace recmap {

struct Tuning {
  // PrefaultMode::kInline: the bytes a writer's thread populates per step
  // (a multiple of 4096, at least 4096; rounded down). While the window is
  // not yet full (a region just taken) a step populates twice this.
  uint64_t prefault_step_bytes = uint64_t{16} << 10;
  // With Options::persist_index: stores whose log cannot hold this many
  // records get no index file (an open scans a log this small in
  // milliseconds; the file would only add I/O).
  uint64_t persist_index_min_records = 100000;
  // With Options::persist_index_in_background: the background index writer
  // starts once the store can hold max(persist_index_min_records, this)
  // records.
  uint64_t persist_index_background_min_records = 0;
};

// The values in effect in this process. Thread-safe.
Tuning CurrentTuning();

// Test-only: makes `tuning` the values in effect in this process. A handle
// reads them when it uses them (opening, sealing a region, creating a
// writer), so set them before opening the stores they are meant for.
// Thread-safe.
void SetTuningForTesting(const Tuning& tuning);

}  // namespace recmap

#endif  // RECMAP_STORE_TUNING_H_
