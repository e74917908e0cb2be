#include "scan_pipeline.h"

#include <pthread.h>

#include <atomic>
#include <system_error>
#include <thread>
#include <vector>

#include "store_rep.h"

namespace recmap {
namespace {

// Ring of region-relative record offsets, verifier -> caller. Small, so the
// caller reads records the verifier touched a moment ago (in L2, not DRAM):
// 8192 records of 136 bytes are about 1 MiB.
constexpr uint64_t kRingSize = 8192;
// Offsets are published, and ring space returned, in batches: one mutex
// round trip per batch instead of per record.
constexpr uint64_t kBatch = 256;
// Marks the end of the current region's records in the ring. Never a record
// offset: records start at kRegionDataOffset or later.
constexpr uint32_t kRegionEnd = 0;
// Set in an entry (offsets are 8-aligned) whose checksum the verifier left
// to the caller; see Pipeline.
constexpr uint32_t kUnverified = 1;
// The verifier checksums records itself only while at least this many
// entries wait for the caller.
constexpr uint64_t kBacklogToVerify = kRingSize / 2;

// Before blocking in a futex wait, a thread that finds the ring empty (or
// full) polls it this many times: the other side normally publishes within
// microseconds, and a sleep and wake-up per batch would cost more than the
// batch.
constexpr int kSpins = 2000;
// tail_ once the caller has stopped.
constexpr uint64_t kStopped = ~uint64_t{0};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Waits until `word` differs from `seen` (spinning, then blocking) and
// returns its new value.
uint64_t WaitChange(const std::atomic<uint64_t>& word, uint64_t seen) {
  uint64_t v = word.load(std::memory_order_acquire);
  for (int i = 0; i < kSpins && v == seen; ++i) {
    CpuRelax();
    v = word.load(std::memory_order_acquire);
  }
  while (v == seen) {
    word.wait(seen, std::memory_order_acquire);
    v = word.load(std::memory_order_acquire);
  }
  return v;
}

// Work sharing: the verifier always walks and checks the headers (it must,
// to find the next record), but the checksum -- most of the cost -- is done
// by whichever side is behind: when the caller has caught up (fewer than
// kBacklogToVerify entries waiting), the verifier passes records on with
// kUnverified and the caller checksums them before delivering them. A
// mismatch then ends the scan with exactly the DataLoss a serial scan gives
// (a record whose header validates is never a resume gap). Salvage mode
// (resynchronising past damage) is left wholly to the verifier.
//
// Invariants: the verifier writes ring slots [head_, tail_ + kRingSize)
// only; the caller reads slots [tail_, head_) only. head_ is stored with
// release after the slots (and, for a kRegionEnd, the region's status_
// entry) are written, and loaded with acquire before they are read; tail_
// likewise orders the caller's reads before the verifier reuses the slots.
class Pipeline {
 public:
  Pipeline(StoreRep& rep, uint32_t regions, ScanChecksums checksums)
      : rep_(rep),
        regions_(regions),
        checksums_(checksums),
        status_(regions),
        ring_(kRingSize) {}

  // Verifier thread: scans the regions in order, pushing the offset of every
  // valid put and delete, then kRegionEnd; stops after a region with damage
  // or when the caller has stopped.
  void Produce() {
    salvage_ = rep_.options().recovery_mode == RecoveryMode::kSalvage;
    verify_ = checksums_ != ScanChecksums::kCaller || salvage_;
    const bool salvage = salvage_;
    for (uint32_t r = 0; r < regions_; ++r) {
      absl::StatusOr<uint64_t> end = rep_.RegionScanEnd(r);
      absl::Status status;
      if (!end.ok()) {
        status = end.status();
      } else if (*end != 0) {
        ScanResult res = ScanRegion(
            rep_.region(r).ref, kRegionDataOffset, *end, salvage,
            [&](const ScannedRecord& rec) {
              if (rec.header.type == RecordType::kPadding) return true;
              // Region-relative offsets fit: regions are at most
              // 4 GiB (kMaxRegionSize).
              const uint32_t offset = static_cast<uint32_t>(rec.offset);
              return Push(verify_ ? offset : offset | kUnverified);
            },
            &verify_);
        if (res.stopped) return;  // the caller stopped
        status = rep_.RegionScanStatus(r, res, *end);
      }
      const bool ok = status.ok();
      status_[r] = std::move(status);
      if (!Push(kRegionEnd)) return;
      Publish();
      if (!ok) return;
    }
  }

  // Calling thread: hands the verified records to `fn` in ring order.
  absl::Status Consume(const std::function<bool(const RecordView&)>& fn) {
    uint64_t tail = 0;
    uint32_t region = 0;
    while (true) {
      const uint64_t head = WaitChange(head_, tail);
      for (; tail < head; ++tail) {
        if (tail % kBatch == 0) ReturnSpace(tail);
        const uint32_t entry = ring_[tail % kRingSize];
        if (entry == kRegionEnd) {
          if (!status_[region].ok()) return status_[region];
          if (++region == regions_) return absl::OkStatus();
          continue;
        }
        ScannedRecord rec;
        absl::Status bad;
        if (!RecordAt(region, entry, &rec, &bad)) return bad;
        if (!fn(rep_.ScannedView(region, rec))) return absl::OkStatus();
      }
    }
  }

  // Tells the verifier that the caller has returned.
  void Stop() {
    stop_.store(true, std::memory_order_release);
    tail_.store(kStopped, std::memory_order_release);
    tail_.notify_all();
  }

 private:
  // Verifier: appends one entry; false if the caller has stopped.
  bool Push(uint32_t entry) {
    if (head_local_ == space_end_ && !WaitForSpace()) return false;
    ring_[head_local_ % kRingSize] = entry;
    ++head_local_;
    if (head_local_ % kBatch == 0) {
      Publish();
      const uint64_t tail = tail_.load(std::memory_order_acquire);
      switch (checksums_) {
        case ScanChecksums::kShared:
          verify_ = salvage_ || (tail != kStopped &&
                                 head_local_ - tail >= kBacklogToVerify);
          break;
        case ScanChecksums::kVerifier:
          break;
        case ScanChecksums::kCaller:
          verify_ = salvage_;
          break;
      }
      return !stop_.load(std::memory_order_relaxed);
    }
    return true;
  }

  void Publish() {
    head_.store(head_local_, std::memory_order_release);
    head_.notify_one();
  }

  // Verifier, ring full: publishes, then waits for the caller to free
  // slots; false if the caller has stopped.
  bool WaitForSpace() {
    Publish();
    uint64_t tail = tail_.load(std::memory_order_acquire);
    while (tail != kStopped && head_local_ - tail >= kRingSize)
      tail = WaitChange(tail_, tail);
    if (tail == kStopped) return false;
    space_end_ = tail + kRingSize;
    return true;
  }

  // Caller: frees the slots before `tail`.
  void ReturnSpace(uint64_t tail) {
    tail_.store(tail, std::memory_order_release);
    tail_.notify_one();
  }

  // Caller: the record at ring entry `entry` of `region`, which the
  // verifier validated (all but the checksum if kUnverified is set). The
  // header is decoded again from the mapping: it cannot have changed.
  // False, with the serial scan's DataLoss in `status`, if the checksum
  // left to the caller does not match.
  bool RecordAt(uint32_t region, uint32_t entry, ScannedRecord* rec,
                absl::Status* status) {
    const RegionRef& ref = rep_.region(region).ref;
    rec->offset = entry & ~kUnverified;
    const char* p = ref.base + rec->offset;
    (void)rec->header.DecodeFrom(p);
    rec->payload = p + kRecordHeaderSize;
    if ((entry & kUnverified) != 0 &&
        RecordChecksum(p, rec->header.length, ref.seed) !=
            rec->header.checksum) {
      ScanResult res;
      res.end = rec->offset;
      res.stop = ScanStop::kBadChecksum;
      *status = rep_.RegionScanStatus(region, res, rec->offset + 1);
      return false;
    }
    return true;
  }

  StoreRep& rep_;
  const uint32_t regions_;
  const ScanChecksums checksums_;
  std::vector<absl::Status> status_;  // per region, see class comment
  std::vector<uint32_t> ring_;

  // One cache line each: the caller polls head_ while the verifier writes
  // its own counters on every record; sharing a line would move it between
  // the cores once per record.
  alignas(64) std::atomic<uint64_t> head_{0};  // entries published
  alignas(64) std::atomic<uint64_t> tail_{
      0};  // entries the caller is done with
  std::atomic<bool> stop_{false};

  // Verifier thread only.
  alignas(64) uint64_t head_local_ = 0;  // entries written
  uint64_t space_end_ = kRingSize;       // entries that may be written
  bool salvage_ = false;
  bool verify_ = true;  // checksum the records pushed next
};

}  // namespace

absl::Status ForEachRecordSerial(
    StoreRep& rep, uint32_t regions,
    const std::function<bool(const RecordView&)>& fn) {
  bool stopped = false;
  for (uint32_t i = 0; i < regions && !stopped; ++i) {
    if (absl::Status s =
            rep.ForEachInRegion(i, fn, /*skip_padding=*/true, &stopped);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::Status ForEachRecordPipelined(
    StoreRep& rep, uint32_t regions,
    const std::function<bool(const RecordView&)>& fn, ScanChecksums checksums) {
  if (regions == 0) return absl::OkStatus();
  Pipeline pipeline(rep, regions, checksums);
  std::thread verifier;
  try {
    verifier = std::thread([&pipeline] { pipeline.Produce(); });
  } catch (const std::system_error&) {
    return ForEachRecordSerial(rep, regions, fn);  // no thread to be had
  }
  pthread_setname_np(verifier.native_handle(), "recmap-scan");
  absl::Status s = pipeline.Consume(fn);
  pipeline.Stop();
  verifier.join();
  return s;
}

}  // namespace recmap
