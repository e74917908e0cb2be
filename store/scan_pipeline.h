// Store::ForEachRecord on two threads. Verifying a record (header checks and
// the XXH3 checksum over header and payload) costs more than handing it to
// the caller, so a verifier thread runs the scan a little ahead and passes
// the offsets of the records it validated to the calling thread through a
// small ring; the calling thread decodes each header again and calls the
// callback. The bytes below a region's indexed end never change while the
// store is mapped (records are immutable once published, and a scrub only
// zeroes bytes past a tail), so a record verified by the other thread is
// still the record the callback sees.
#ifndef RECMAP_STORE_SCAN_PIPELINE_H_
#define RECMAP_STORE_SCAN_PIPELINE_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "recmap/record.h"

namespace recmap {

class StoreRep;

// Calls `fn` on the calling thread for every put and delete record of
// regions [0, regions), in log order, exactly as a ForEachInRegion(i, fn,
// /*skip_padding=*/true) per region would, with the same early stop and
// the same DataLoss status for damage (the records before the damage are
// delivered first). Falls back to that single-threaded loop if the thread
// cannot be started. Errors: as Store::ForEachRecord.
// Which thread checksums the records (headers are always checked by the
// verifier thread, which walks the log): kShared balances the work between
// the two (the default; see scan_pipeline.cc); the others are for tests,
// which must reach both ways a checksum mismatch can be found.
enum class ScanChecksums { kShared, kVerifier, kCaller };
[[nodiscard]] absl::Status ForEachRecordPipelined(
    StoreRep& rep, uint32_t regions,
    const std::function<bool(const RecordView&)>& fn,
    ScanChecksums checksums = ScanChecksums::kShared);

// The single-threaded loop (and the fallback): ForEachInRegion per region.
[[nodiscard]] absl::Status ForEachRecordSerial(
    StoreRep& rep, uint32_t regions,
    const std::function<bool(const RecordView&)>& fn);

}  // namespace recmap

#endif  // RECMAP_STORE_SCAN_PIPELINE_H_
