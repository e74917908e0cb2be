#include "scan_pipeline.h"

#include <pthread.h>

#include <atomic>
#include <system_error>
#include <thread>

#include "store_rep.h"

namespace recmap {
namespace {

// Positions are packed as region << 32 | region-relative offset (regions
// are at most 4 GiB, kMaxRegionSize), so that log order is numeric order.
uint64_t Pos(uint32_t region, uint64_t offset) {
  return uint64_t{region} << 32 | offset;
}
uint32_t RegionOf(uint64_t pos) { return static_cast<uint32_t>(pos >> 32); }
uint64_t OffsetOf(uint64_t pos) { return pos & 0xFFFFFFFFu; }

// The caller publishes its position, and the verifier its progress, every
// this many records: often enough that neither falls far out of date, rarely
// enough that the cache lines they share do not move per record.
constexpr uint64_t kPublishEvery = 32;
// How far the verifier may run ahead of the caller inside a region: about
// what the L2 cache holds, so that the caller reads what the verifier has
// just read. Past it the verifier waits.
constexpr uint64_t kMaxLead = uint64_t{1} << 20;
// How far ahead of the caller the verifier restarts once the caller has
// overtaken it.
constexpr uint64_t kSkipAhead = uint64_t{256} << 10;
// Spins before a futex wait (the verifier only): the caller moves on within
// microseconds when it is running at all.
constexpr int kSpins = 128;
constexpr uint64_t kStopped = ~uint64_t{0};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// The caller walks the log exactly as the serial scan does (ScanRegion over
// each region, header checks and all) and delivers every record itself; it
// never waits for the verifier. The verifier walks the same chain of
// records a little ahead of it, checksumming, and publishes how far it got;
// the caller skips the checksum of a record the verifier has verified, and
// verifies any other itself. So the two share the checksums -- most of a
// scan's cost -- when both run, and the caller alone is a serial scan when
// the verifier is not scheduled. (On a busy machine the two threads still
// share the process's CPU time: 0.7-1.3x of a one-thread scan, measured
// beside a CI build.)
//
// Why a skipped checksum is safe: record boundaries are a deterministic
// chain from any boundary, and the verifier only ever starts from the
// region start or from a position the caller published (a boundary it was
// about to examine). verified_[r % 2] = Pos(r, e) means: every record of
// region r that starts at or after the verifier's last starting point and
// before e passed the full check, checksum included. The caller, at or past
// that starting point (it published it earlier), trusts a record starting
// at s < e only when the slot is tagged with its own region. A stale slot
// from an earlier stretch of the same region ends at or before where the
// caller already is. The verifier enters region r + 2 (reusing r's slot)
// only after the caller has reached r + 1. The bytes below a region's
// indexed end never change while the store is mapped, so what the verifier
// checked is what the caller reads.
class Pipeline {
 public:
  Pipeline(StoreRep& rep, uint32_t regions, ScanChecksums mode)
      : rep_(rep), regions_(regions), mode_(mode) {}

  // Verifier thread.
  void Verify() {
    uint64_t at = Pos(0, kRegionDataOffset);
    while (true) {
      const uint64_t caller = caller_.load(std::memory_order_acquire);
      if (caller == kStopped) break;
      bool behind = false;
      if (caller > at) {  // fell behind: start from where the caller is
        at = caller;
        behind = true;
      }
      const uint32_t r = RegionOf(at);
      if (r >= regions_) break;
      if (r >= RegionOf(caller) + 2) {  // would reuse a slot the caller needs
        WaitForCaller(Pos(r - 1, 0));
        continue;
      }
      // The indexed end as it stands, read without the index lock, which
      // the caller takes at every region (RegionScanEnd). The caller may
      // find more; it checks whatever lies past the verifier's end itself.
      const StoreRep::RegionInfo& ri = rep_.region(r);
      const uint64_t end =
          ri.formatted ? ri.indexed_end.load(std::memory_order_acquire) : 0;
      if (end == 0 || OffsetOf(at) >= end) {
        at = Pos(r + 1, kRegionDataOffset);
        MarkDone(r);
        continue;
      }
      // Overtaken, the verifier would race the caller neck and neck, both
      // checksumming the same records: walk the headers alone (cheap) to a
      // boundary kSkipAhead further, and verify from there.
      if (behind) at = Pos(r, SkipAhead(r, OffsetOf(at), end));
      seg_start_[r % 2].store(at, std::memory_order_release);
      std::atomic<uint64_t>& slot = verified_[r % 2];
      uint64_t count = 0;
      bool jump = false;
      ScanResult res = ScanRegion(
          rep_.region(r).ref, OffsetOf(at), end, /*salvage=*/false,
          [&](const ScannedRecord& rec) {
            if (++count % kPublishEvery != 0) return true;
            slot.store(Pos(r, rec.offset + RecordSize(rec.header.length)),
                       std::memory_order_release);
            uint64_t c = caller_.load(std::memory_order_acquire);
            // (In the kVerifier test mode the caller waits for every
            // record, so being caught up with is no reason to jump.)
            if (c == kStopped ||
                (mode_ != ScanChecksums::kVerifier && c > Pos(r, rec.offset))) {
              jump = true;  // the caller has passed us (or is gone)
              return false;
            }
            if (RegionOf(c) == r && rec.offset - OffsetOf(c) > kMaxLead) {
              // Resume once the caller is within half the lead: a wake-up
              // per publish would cost the caller a futex call per batch.
              c = WaitForCaller(Pos(r, rec.offset - kMaxLead / 2));
              if (c == kStopped) return false;
            }
            return true;
          });
      if (res.records != 0)
        slot.store(Pos(r, res.end), std::memory_order_release);
      if (jump) continue;
      MarkDone(r);
      // Damage: the caller meets it and reports it exactly as the serial
      // scan would; nothing past it is vouched for.
      if (IsDamage(res.stop)) break;
      at = Pos(r + 1, kRegionDataOffset);
    }
    MarkDone(~uint32_t{0});
  }

  // Calling thread: the serial scan, skipping checksums the verifier did.
  absl::Status Deliver(const std::function<bool(const RecordView&)>& fn,
                       uint64_t* trusted) {
    // Never in salvage mode: ForEachRecordPipelined scans that serially.
    for (uint32_t r = 0; r < regions_; ++r) {
      Publish(Pos(r, kRegionDataOffset));
      absl::StatusOr<uint64_t> end = rep_.RegionScanEnd(r);
      if (!end.ok()) return end.status();
      if (*end == 0) continue;  // never formatted
      uint64_t count = 0;
      ScanResult res = ScanRegion(
          rep_.region(r).ref, kRegionDataOffset, *end, /*salvage=*/false,
          [&](const ScannedRecord& rec) {
            if (++count % kPublishEvery == 0)
              Publish(Pos(r, rec.offset + RecordSize(rec.header.length)));
            if (rec.header.type == RecordType::kPadding) return true;
            return fn(rep_.ScannedView(r, rec));
          },
          [&](uint64_t pos) {
            if (!VerifiedBy(r, pos)) return true;
            ++*trusted;
            return false;
          });
      if (res.stopped) return absl::OkStatus();
      if (absl::Status s = rep_.RegionScanStatus(r, res, *end); !s.ok())
        return s;
    }
    return absl::OkStatus();
  }

  // The caller is done: lets the verifier run out.
  void Stop() {
    caller_.store(kStopped, std::memory_order_release);
    caller_.notify_all();
  }

 private:
  // Verifier: the boundary kSkipAhead bytes (or less, at a stop) past
  // `from`, found by checking headers only.
  uint64_t SkipAhead(uint32_t r, uint64_t from, uint64_t end) {
    ScanResult res = ScanRegion(
        rep_.region(r).ref, from, end, /*salvage=*/false,
        [&](const ScannedRecord& rec) {
          return rec.offset + RecordSize(rec.header.length) < from + kSkipAhead;
        },
        [](uint64_t) { return false; });
    return res.end;
  }

  // Whether the verifier has verified the record at `pos` of region `r`:
  // inside its current stretch [seg_start_, verified_) of that region (end
  // loaded first: the start it then reads is that stretch's or a later
  // one's, which begins at or past the earlier end -- an empty window).
  bool Trusted(uint32_t r, uint64_t pos) const {
    const uint64_t e = verified_[r % 2].load(std::memory_order_acquire);
    const uint64_t s = seg_start_[r % 2].load(std::memory_order_acquire);
    return RegionOf(e) == r && RegionOf(s) == r && OffsetOf(s) <= pos &&
           pos < OffsetOf(e);
  }

  // Trusted, but ScanChecksums::kVerifier (tests) first waits until the
  // verifier has either verified the record or left the region.
  bool VerifiedBy(uint32_t r, uint64_t pos) {
    if (mode_ == ScanChecksums::kVerifier) {
      while (!Trusted(r, pos) && done_.load(std::memory_order_acquire) <= r)
        std::this_thread::yield();
      // The verifier stores its last values before it marks the region
      // done: Trusted below reads them again after seeing done_.
    }
    return Trusted(r, pos);
  }

  // Caller: publishes its position, waking the verifier only if it waits
  // for the caller to get this far. (seq_cst on caller_ and wake_at_ on
  // both sides: either the caller sees the verifier's wake_at_, or the
  // verifier sees the caller's position before it sleeps.)
  void Publish(uint64_t pos) {
    caller_.store(pos, std::memory_order_seq_cst);
    if (pos >= wake_at_.load(std::memory_order_seq_cst)) {
      wake_at_.store(kStopped, std::memory_order_relaxed);
      caller_.notify_one();
    }
  }

  // Verifier: waits until the caller has reached `target` (or stopped);
  // returns where it is.
  uint64_t WaitForCaller(uint64_t target) {
    uint64_t c = caller_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpins && c < target; ++i) {
      CpuRelax();
      c = caller_.load(std::memory_order_acquire);
    }
    while (c < target) {
      wake_at_.store(target, std::memory_order_seq_cst);
      c = caller_.load(std::memory_order_seq_cst);
      if (c >= target) break;
      caller_.wait(c, std::memory_order_acquire);
      c = caller_.load(std::memory_order_acquire);
    }
    wake_at_.store(kStopped, std::memory_order_relaxed);
    return c;
  }

  // Verifier: it will verify nothing more in regions < `next`.
  void MarkDone(uint32_t region) {
    const uint64_t next = region == ~uint32_t{0} ? ~uint64_t{0} : region + 1;
    if (next > done_.load(std::memory_order_relaxed))
      done_.store(next, std::memory_order_release);
  }

  StoreRep& rep_;
  const uint32_t regions_;
  const ScanChecksums mode_;

  // One cache line each: the caller stores caller_ and loads verified_, the
  // verifier the other way round.
  alignas(64) std::atomic<uint64_t> caller_{0};  // Pos the caller examines
  alignas(64) std::atomic<uint64_t> verified_[2] = {0, 0};  // see class
  std::atomic<uint64_t> seg_start_[2] = {0, 0};
  std::atomic<uint64_t> done_{0};  // regions the verifier has left
  // Where the caller must wake the waiting verifier; kStopped: it is not
  // waiting.
  alignas(64) std::atomic<uint64_t> wake_at_{kStopped};
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
    const std::function<bool(const RecordView&)>& fn, ScanChecksums checksums,
    uint64_t* trusted) {
  uint64_t unused;
  if (trusted == nullptr) trusted = &unused;
  *trusted = 0;
  // Salvage mode verifies every record where it resynchronises: nothing to
  // share. kCaller (tests): the caller alone, through the pipelined path.
  if (regions == 0 || rep.options().recovery_mode == RecoveryMode::kSalvage)
    return ForEachRecordSerial(rep, regions, fn);
  Pipeline pipeline(rep, regions, checksums);
  std::thread verifier;
  if (checksums != ScanChecksums::kCaller) {
    try {
      verifier = std::thread([&pipeline] { pipeline.Verify(); });
    } catch (const std::system_error&) {
      return ForEachRecordSerial(rep, regions, fn);  // no thread to be had
    }
    pthread_setname_np(verifier.native_handle(), "recmap-scan");
  }
  absl::Status s = pipeline.Deliver(fn, trusted);
  pipeline.Stop();
  if (verifier.joinable()) verifier.join();
  return s;
}

}  // namespace recmap
