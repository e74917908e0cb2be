// The on-disk format of a recmap store, byte for byte. docs/FORMAT.md is the
// normative description; this header is its executable twin. Any change
// here bumps kFormatVersion and updates docs/FORMAT.md in the same commit.
//
//   file   := file_header_page shared_page region*
//   region := region_header_page region_state_page record* zero*
//   record := record_header payload padding          (8-byte aligned)
//
// All integers are little-endian. Headers and records are encoded with
// EncodeTo and decoded with DecodeFrom (or coding.h's DecodeFixed*) over
// explicit byte spans. The one exception is the live coordination words:
// the shared page's (kShared*) and each region state page's (kState*) are
// read and written in place by every process that has the store open, at
// once, so they are accessed as std::atomic_ref over the mapping through
// MappedWord64/MappedWord32 below -- the only place mapped bytes are cast.
// Their offsets are multiples of their size inside page-aligned pages, so
// the casts are aligned; atomic_ref on these lock-free widths is
// address-free, hence valid across processes. The index file's slot words
// are the same case (index_format.h).
#ifndef RECMAP_STORE_FORMAT_H_
#define RECMAP_STORE_FORMAT_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "coding.h"
#include "recmap/record.h"

namespace recmap {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr char kFileMagic[8] = {'\x89', 'R', 'E', 'C',
                                       'M',    'A', 'P', '\n'};
inline constexpr uint32_t kRegionMagic = 0x47524D52;  // "RMRG" on disk

inline constexpr uint64_t kPageSize = 4096;
// File layout.
inline constexpr uint64_t kFileHeaderOffset = 0;
inline constexpr uint64_t kSharedPageOffset = kPageSize;
inline constexpr uint64_t kFirstRegionOffset = 2 * kPageSize;
// Region layout, relative to the region's start.
inline constexpr uint64_t kRegionStatePageOffset = kPageSize;
inline constexpr uint64_t kRegionDataOffset = 2 * kPageSize;

inline constexpr uint64_t kMinRegionSize = 4 * kPageSize;      // 16 KiB
inline constexpr uint64_t kMaxRegionSize = uint64_t{1} << 32;  // 4 GiB
inline constexpr uint64_t kDefaultRegionSize = uint64_t{64} << 20;

// The live word at byte `offset` of a mapped page (see the top of this
// file for which words these are and why they are atomics).
inline std::atomic_ref<uint64_t> MappedWord64(char* page, uint64_t offset) {
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(page + offset));
}
inline std::atomic_ref<uint32_t> MappedWord32(char* page, uint64_t offset) {
  return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(page + offset));
}
// The address of a 32-bit live word, for futex(2).
inline uint32_t* MappedWord32Address(char* page, uint64_t offset) {
  return reinterpret_cast<uint32_t*>(page + offset);
}

// ---------------------------------------------------------------------------
// File header: page 0, written once at creation and never again.
struct FileHeader {
  static constexpr size_t kEncodedSize = 72;
  // Field offsets.
  static constexpr size_t kMagicOffset = 0;              // 8 bytes, kFileMagic
  static constexpr size_t kVersionOffset = 8;            // u32
  static constexpr size_t kFlagsOffset = 12;             // u32
  static constexpr size_t kUuidOffset = 16;              // 16 bytes
  static constexpr size_t kRegionSizeOffset = 32;        // u64
  static constexpr size_t kFirstRegionFieldOffset = 40;  // u64
  static constexpr size_t kCreatedOffset = 48;           // u64, unix nanos
  static constexpr size_t kReservedOffset = 56;          // u64, zero
  static constexpr size_t kChecksumOffset = 64;          // u64: of [0, 64)

  uint32_t format_version = kFormatVersion;
  uint32_t flags = 0;  // must be zero in version 1
  std::array<uint8_t, 16> uuid{};
  uint64_t region_size = 0;
  uint64_t first_region_offset = kFirstRegionOffset;
  uint64_t created_unix_nanos = 0;

  // Writes exactly kEncodedSize bytes, checksum included.
  void EncodeTo(char* dst) const;
  // Validates magic, version, checksum and every field's range. `size` is
  // the number of readable bytes at `src`. Errors: DataLoss (truncated,
  // wrong magic, bad checksum, bad field), FailedPrecondition (a newer
  // format version). Messages name the offset and the field.
  [[nodiscard]] absl::Status DecodeFrom(const char* src, size_t size);
};

// ---------------------------------------------------------------------------
// Shared page: page 1. Live coordination words for the processes that have
// the store open; never trusted after a crash (the first writer to open the
// file rebuilds them from the log).
inline constexpr uint64_t kSharedNextSequence = 0;  // u64, atomic
inline constexpr uint64_t kSharedRegionCount = 64;  // u64, atomic
// Tail wake-up (docs/FORMAT.md, "Shared page"): a tailing reader about to
// block sets the waiters flag to 1; a writer that sees it set after
// allocating a sequence number clears it, bumps the futex word and wakes
// every FUTEX_WAIT on it once the record is published. Zero in a new file;
// a stale flag costs one spurious wake.
inline constexpr uint64_t kSharedTailWaiters = 128;  // u32, atomic
inline constexpr uint64_t kSharedTailFutex = 192;    // u32, futex word

// ---------------------------------------------------------------------------
// Region header: the first page of each region, written once when the region
// is formatted and synced before the region is published to other writers.
struct RegionHeader {
  static constexpr size_t kEncodedSize = 48;
  // Field offsets.
  static constexpr size_t kMagicOffset = 0;        // u32, kRegionMagic
  static constexpr size_t kIndexOffset = 4;        // u32
  static constexpr size_t kEpochOffset = 8;        // u64
  static constexpr size_t kRegionSizeOffset = 16;  // u64
  static constexpr size_t kUuidOffset = 24;        // 16 bytes
  static constexpr size_t kChecksumOffset = 40;    // u64: of [0, 40)

  uint32_t index = 0;
  uint64_t epoch = 0;  // random, drawn at every format of the region
  uint64_t region_size = 0;
  std::array<uint8_t, 16> file_uuid{};

  void EncodeTo(char* dst) const;
  // Errors: DataLoss (bad magic, checksum or field). Does not compare
  // against the file header; the caller checks index/uuid/size agree.
  [[nodiscard]] absl::Status DecodeFrom(const char* src, size_t size);
};

// Region state page: the second page of each region. Mutable words; each on
// its own cache line so that readers polling the tail do not share a line
// with Sync() traffic.
inline constexpr uint64_t kStateCommittedTail = 0;  // u64 atomic, release
inline constexpr uint64_t kStateSealed = 64;    // u32: kSealedMagic if sealed
inline constexpr uint64_t kStateOwnerPid = 68;  // u32: 0 when released cleanly
inline constexpr uint64_t kStateDurableTail = 128;   // u64
inline constexpr uint64_t kStateDurableCheck = 136;  // u64: DurableCheck(tail)
// The owner's in-flight sequence number: kPendingUnknown from just before
// it allocates a sequence until it stores the allocated number here; the
// number stays after publication (a value <= the region's last published
// sequence means "nothing in flight"); 0 after a claim. Only meaningful
// while the region's lock is held; tailing readers use it to tell a gap a
// live writer is about to fill from a permanent one.
inline constexpr uint64_t kStatePendingSequence = 192;  // u64 atomic
inline constexpr uint64_t kPendingUnknown = ~uint64_t{0};
inline constexpr uint32_t kSealedMagic = 0x4C414553;  // "SEAL"
// owner_pid value left by recovery: the bytes past the committed tail are
// not known to be zero, so the next claimer must scrub them.
inline constexpr uint32_t kScrubOwner = 0xFFFFFFFF;

// ---------------------------------------------------------------------------
// Lock bytes: open-file-description locks (file_lock.h) on single bytes far
// past the end of the data (they need not exist) name the store's locks.
// Every process that opens the file agrees on them, as on the bytes above.
inline constexpr uint64_t kLockBase = uint64_t{1} << 62;
// Held exclusively while a writable handle recovers the file at open.
inline constexpr uint64_t kLockRecovery = kLockBase + 0;
// Held exclusively while the file grows by a region.
inline constexpr uint64_t kLockGrowth = kLockBase + 1;
// Every writable handle holds it shared; exclusive means "no writer is open".
inline constexpr uint64_t kLockWriters = kLockBase + 2;
// Held exclusively by compaction while it copies the store.
inline constexpr uint64_t kLockCompaction = kLockBase + 3;
// Held exclusively while a handle writes the persisted index file in the
// background (index_persister.cc): one writer of the file at a time.
inline constexpr uint64_t kLockIndex = kLockBase + 4;
// Region i is owned by whoever holds kLockRegionBase + i exclusively.
inline constexpr uint64_t kLockRegionBase = kLockBase + 4096;

// ---------------------------------------------------------------------------
// Records.
inline constexpr uint8_t kMaxRecordType = 3;

// What each record type is, asked by name rather than by comparing types
// (adding a type means deciding its answer here). Puts and deletes are the
// store's records: indexed, counted, shown to readers. Padding is a resume
// marker (region.h): it takes room in the log and is otherwise skipped.
constexpr bool IsUserRecord(RecordType t) {
  return t == RecordType::kPut || t == RecordType::kDelete;
}
constexpr bool IsPadding(RecordType t) { return t == RecordType::kPadding; }
// A delete: a user record that hides the id's earlier values and carries
// no payload.
constexpr bool IsTombstone(RecordType t) { return t == RecordType::kDelete; }

inline constexpr uint64_t kRecordHeaderSize = 32;
// Offsets inside the record header.
inline constexpr uint64_t kRecordChecksumOffset = 0;   // u64
inline constexpr uint64_t kRecordLengthOffset = 8;     // u32
inline constexpr uint64_t kRecordTypeOffset = 12;      // u8, then 3 zero bytes
inline constexpr uint64_t kRecordIdOffset = 16;        // u64
inline constexpr uint64_t kRecordSequenceOffset = 24;  // u64
// The checksum covers bytes [kRecordLengthOffset, kRecordHeaderSize+length).
inline constexpr uint64_t kRecordChecksummedOffset = kRecordLengthOffset;

struct RecordHeader {
  uint64_t checksum = 0;
  uint32_t length = 0;
  RecordType type = RecordType::kZero;
  uint64_t id = 0;
  uint64_t sequence = 0;

  // Writes kRecordHeaderSize bytes, checksum field as given. Inline: the
  // append and scan paths run it once per record.
  void EncodeTo(char* dst) const {
    EncodeFixed64(dst + kRecordChecksumOffset, checksum);
    EncodeFixed32(dst + kRecordLengthOffset, length);
    EncodeFixed32(dst + kRecordTypeOffset, static_cast<uint8_t>(type));
    EncodeFixed64(dst + kRecordIdOffset, id);
    EncodeFixed64(dst + kRecordSequenceOffset, sequence);
  }
  // Structural decode of kRecordHeaderSize bytes (no checksum check): the
  // reserved bytes must be zero and the type known. Returns false if not.
  [[nodiscard]] bool DecodeFrom(const char* src) {
    checksum = DecodeFixed64(src + kRecordChecksumOffset);
    length = DecodeFixed32(src + kRecordLengthOffset);
    const uint32_t type_word = DecodeFixed32(src + kRecordTypeOffset);
    id = DecodeFixed64(src + kRecordIdOffset);
    sequence = DecodeFixed64(src + kRecordSequenceOffset);
    if (type_word > kMaxRecordType) return false;  // rejects reserved bits
    type = static_cast<RecordType>(type_word);
    return true;
  }
};

// The largest sequence number a valid record carries (2^63 - 1). A larger
// one -- only damage or a hostile file can hold it; 2^63 writes never
// happen -- is a bad header: accepting it would make recovery restart the
// global sequence past it, which wraps to the reserved 0 (a later Put would
// be acknowledged yet never readable) and then to reused numbers.
inline constexpr uint64_t kMaxSequence = (uint64_t{1} << 63) - 1;

// The payload length of a resume marker (a padding record, region.h): the
// region-relative offset where the zero gap before it starts, u64.
inline constexpr uint64_t kResumeMarkerLength = 8;

// On-disk footprint of a record with a payload of `length` bytes.
constexpr uint64_t RecordSize(uint64_t length) {
  return kRecordHeaderSize + ((length + 7) & ~uint64_t{7});
}
// Largest payload a region of `region_size` bytes can hold.
constexpr uint64_t MaxPayload(uint64_t region_size) {
  return region_size - kRegionDataOffset - kRecordHeaderSize;
}
// InvalidArgument if a payload of `length` bytes does not fit a region of
// `region_size` bytes (the message names both and the limit).
[[nodiscard]] absl::Status CheckPayloadSize(uint64_t length,
                                            uint64_t region_size);

// The per-region checksum seed: binds every record to one file (uuid), one
// region (index) and one formatting of that region (epoch), so that stale
// bytes from an earlier use or another file never validate.
uint64_t RegionSeed(const std::array<uint8_t, 16>& uuid, uint32_t index,
                    uint64_t epoch);
// Checksum of a record whose header+payload bytes start at `record`. The
// caller guarantees kRecordHeaderSize + length bytes are readable.
uint64_t RecordChecksum(const char* record, uint32_t length, uint64_t seed);
// The check word stored beside a region's durable tail.
uint64_t DurableCheck(uint64_t durable_tail, uint64_t seed);

const char* RecordTypeName(RecordType type);

// The checksum used by the file and region headers: XXH3-64 of `n` bytes,
// seed 0. Exposed for tests and tools that forge or repair headers.
uint64_t HeaderChecksum(const char* p, size_t n);

}  // namespace recmap

#endif  // RECMAP_STORE_FORMAT_H_
