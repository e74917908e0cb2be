// Records as the public API sees them.
#ifndef RECMAP_INCLUDE_RECMAP_RECORD_H_
#define RECMAP_INCLUDE_RECMAP_RECORD_H_

#include <cstdint>
#include <string_view>

namespace recmap {

// The kind of a record, as stored in its header (docs/FORMAT.md).
enum class RecordType : uint8_t {
  kZero = 0,     // never-written space: marks the end of a region's log
  kPut = 1,      // a value for an id
  kDelete = 2,   // a tombstone for an id; empty payload
  kPadding = 3,  // filler; skipped by readers, never indexed
};

// Where a record lives: region index and byte offset of its header from the
// start of the file.
struct RecordLocation {
  uint32_t region = 0;
  uint64_t file_offset = 0;
};

// One record, as returned by Get, iterators and the tailing reader.
//
// `value` points into the store's memory mapping (zero copy). It stays valid
// until the Store it came from is destroyed, even while other threads or
// processes keep writing and the file keeps growing: published records are
// immutable and the mapping never moves.
struct RecordView {
  uint64_t id = 0;
  uint64_t sequence = 0;
  RecordType type = RecordType::kZero;
  std::string_view value;
  RecordLocation location;
};

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_RECORD_H_
