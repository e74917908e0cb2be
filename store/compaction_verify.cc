// The verification of a compacted copy against its original
// (compaction.h): one sequential pass over each log.
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "compaction.h"
#include "location.h"
#include "store_peer.h"
#include "store_rep.h"

namespace recmap {
namespace {

// Compares the copy's records, region by region in log order, with the
// original's records at `copied`, in order (VerifyCompacted's contract).
class CopyChecker {
 public:
  CopyChecker(Store& original, const std::vector<uint64_t>& copied, Store& copy)
      : original_path_(original.info().path),
        path_(copy.info().path),
        src_(StorePeer::Rep(original)),
        dst_(StorePeer::Rep(copy)),
        copied_(copied) {}

  // Scans region `i` of the copy to its committed tail, comparing each
  // record.
  absl::Status CheckRegion(uint32_t i) {
    const StoreRep::RegionInfo& ri = dst_.region(i);
    const uint64_t tail =
        ri.formatted ? ri.ref.committed_tail().load(std::memory_order_acquire)
                     : 0;
    if (!ri.formatted || ri.damaged || !ri.ref.PlausibleTail(tail)) {
      return absl::DataLossError(
          absl::StrCat(path_, ": region ", i, " of the compacted copy is ",
                       ri.formatted ? "damaged" : "not formatted",
                       " (committed tail ", tail, ")"));
    }
    ScanResult res =
        ScanRegion(ri.ref, kRegionDataOffset, tail, /*salvage=*/false,
                   [&](const ScannedRecord& rec) { return Compare(i, rec); });
    if (!mismatch_.ok()) return mismatch_;
    if (res.end < tail) {
      return absl::DataLossError(absl::StrCat(
          path_, ": compacted copy is damaged: ", ScanStopName(res.stop),
          " at file offset ", dst_.RegionOffset(i) + res.end,
          " below the committed tail"));
    }
    return absl::OkStatus();
  }

  // After every region: the copy held all of `copied`.
  absl::Status CheckComplete() const {
    if (next_ == copied_.size()) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat(path_, ": compacted copy holds ",
                                            next_, " records; expected ",
                                            copied_.size(), " live records"));
  }

 private:
  // Whether the copy's record `rec` is the next one expected; on a
  // difference, false with mismatch_ set.
  bool Compare(uint32_t region_of_copy, const ScannedRecord& rec) {
    if (IsPadding(rec.header.type)) return true;
    const RecordView c = dst_.ScannedView(region_of_copy, rec);
    if (next_ == copied_.size()) {
      mismatch_ = absl::DataLossError(absl::StrCat(
          path_, ": compacted copy holds more than the ", copied_.size(),
          " live records of the original; the first extra is id ", c.id,
          " (sequence ", c.sequence, ") at offset ", c.location.file_offset));
      return false;
    }
    RecordHeader oh;
    std::string_view ovalue;
    if (!OriginalAt(copied_[next_], &oh, &ovalue)) return false;
    const char* what = nullptr;
    if (c.type != RecordType::kPut) {
      what = "not a put";
    } else if (c.id != oh.id) {
      what = "different id";
    } else if (c.sequence != oh.sequence) {
      what = "different sequence";
    } else if (c.value != ovalue) {
      what = "different value";
    }
    if (what != nullptr) {
      mismatch_ = absl::DataLossError(absl::StrCat(
          path_, ": compacted copy differs from the original at id ", oh.id,
          " (sequence ", oh.sequence, "), live record ", next_ + 1, " of ",
          copied_.size(), ": ", what, " (copy: id ", c.id, ", sequence ",
          c.sequence, ", offset ", c.location.file_offset, ")"));
      return false;
    }
    ++next_;
    return true;
  }

  // The original's record at `packed`. The original's records were
  // validated before the copy (CollectLive) and its file is locked and
  // mapped read-only: a bounded decode is enough to compare the copy,
  // whose checksums the scan verified, with them. False (mismatch_ set) if
  // there is no record there.
  bool OriginalAt(uint64_t packed, RecordHeader* oh, std::string_view* value) {
    const auto [region, offset] = Location::Unpack(packed);
    const RegionRef* ref =
        region < src_.known_regions() ? &src_.region(region).ref : nullptr;
    if (ref == nullptr || offset < kRegionDataOffset ||
        offset + kRecordHeaderSize > ref->size ||
        !oh->DecodeFrom(ref->base + offset) ||
        oh->length > ref->size - offset - kRecordHeaderSize) {
      mismatch_ = absl::DataLossError(absl::StrCat(
          original_path_,
          ": the original changed during compaction: no record at offset ",
          src_.RegionOffset(region) + offset));
      return false;
    }
    *value =
        std::string_view(ref->base + offset + kRecordHeaderSize, oh->length);
    return true;
  }

  const std::string& original_path_;
  const std::string& path_;
  StoreRep& src_;
  StoreRep& dst_;
  const std::vector<uint64_t>& copied_;
  size_t next_ = 0;  // the entry of copied_ the next record must match
  absl::Status mismatch_;
};

}  // namespace

absl::Status VerifyCompacted(Store& original,
                             const std::vector<uint64_t>& copied, Store& copy) {
  // One pass over each log, in lockstep: the copy's records in log order
  // against the original's at the locations written, which are in
  // ascending sequence order. Both walks touch memory sequentially. The
  // copy's regions are scanned directly, every checksum verified, without
  // indexing them (an index of the copy is not needed to compare it, and
  // building one cost more than the rest of the verification).
  StoreRep& dst = StorePeer::Rep(copy);
  if (absl::Status s = dst.LoadNewRegions(); !s.ok()) return s;
  CopyChecker checker(original, copied, copy);
  const uint32_t n = dst.known_regions();
  for (uint32_t i = 0; i < n; ++i) {
    if (absl::Status s = checker.CheckRegion(i); !s.ok()) return s;
  }
  return checker.CheckComplete();
}

}  // namespace recmap
