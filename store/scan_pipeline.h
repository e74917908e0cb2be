// Store::ForEachRecord on two threads. Verifying a record (header checks and
// the XXH3 checksum over header and payload) is most of a scan's cost. The
// calling thread scans exactly as the serial scan does and calls the
// callback; a verifier thread walks the same records a little ahead and
// checksums them, and the caller skips the checksums the verifier has
// done. The caller never waits for the verifier. See scan_pipeline.cc for
// why a skipped checksum is safe.
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
// cannot be started, and in salvage mode (which verifies every record it
// resynchronises on). Errors: as Store::ForEachRecord.
// Who checksums the records: kShared, whichever thread gets to a record
// first (the default). For tests, which must reach both ways a record can
// be checked: kVerifier makes the caller wait for the verifier at every
// record it has not yet passed (so the verifier checks all it can), and
// kCaller starts no verifier (the caller checks everything). `trusted`, if
// given, is set to the number of records (resume markers included) whose
// checksum the caller skipped because the verifier had checked it.
enum class ScanChecksums { kShared, kVerifier, kCaller };
[[nodiscard]] absl::Status ForEachRecordPipelined(
    StoreRep& rep, uint32_t regions,
    const std::function<bool(const RecordView&)>& fn,
    ScanChecksums checksums = ScanChecksums::kShared,
    uint64_t* trusted = nullptr);

// The single-threaded loop (and the fallback): ForEachInRegion per region.
[[nodiscard]] absl::Status ForEachRecordSerial(
    StoreRep& rep, uint32_t regions,
    const std::function<bool(const RecordView&)>& fn);

}  // namespace recmap

#endif  // RECMAP_STORE_SCAN_PIPELINE_H_
