// The append path: claiming a region, writing and publishing records,
// sealing full regions and growing the file.
//
// Invariants:
// - Only the holder of a region's OFD lock writes into the region's log or
//   moves its committed tail, and only forward.
// - A record's bytes are complete (checksum last) before the release-store
//   of the committed tail that publishes it.
// - Bytes past a committed tail are zero, except while the owner is writing
//   the next record (the zero gap before a resume marker stays zero); a
//   claimer that cannot vouch for that (the previous owner died, or
//   recovery rewrote the tail) scrubs them first.
// - The region's pending-sequence word is kPendingUnknown from before the
//   owner allocates a sequence number until it holds that number, so a
//   tailing reader that has seen the allocation (through the shared
//   counter) sees that a record is in flight (tailer.cc relies on this).
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_lock.h"
#include "file_ops.h"
#include "prefault.h"
#include "store_rep.h"
#include "tuning.h"

namespace recmap {
namespace {

// A resume marker's footprint: header and its 8-byte payload.
constexpr uint64_t kMarkerSize = RecordSize(kResumeMarkerLength);
// Populated by the writer itself when it takes a region (see StartPrefault):
// about 0.1 ms of page faults, a few thousand small records.
constexpr uint64_t kSyncPrefaultBytes = uint64_t{512} << 10;

}  // namespace

struct Writer::State {
  StoreRep* rep = nullptr;
  int lock_fd = -1;  // own open file description: own region locks
  int64_t region = -1;
  RegionRef ref;
  uint64_t tail = 0;
  uint32_t pid = 0;
  // Prefaulting (null when off): pages of the owned region up to
  // prefault_end are requested; the next request is made once the tail
  // passes prefault_at.
  std::unique_ptr<Prefaulter> prefault;
  uint64_t prefault_end = 0;
  uint64_t prefault_at = UINT64_MAX;
  // PrefaultMode::kInline: the bytes this thread populates per step; 0 in
  // the background mode (or with prefaulting off).
  uint64_t inline_step = 0;

  ~State();
  void StartPrefault();
  void Prefault();
  // `sequence` 0 allocates the next sequence number.
  absl::Status Write(RecordType type, uint64_t id, std::string_view value,
                     bool assign_id, uint64_t sequence, uint64_t* assigned);
  // Where the next record goes: the tail, or past a closed tail page and
  // its resume marker.
  uint64_t PlaceAt() const;
  void WriteResumeMarker(uint64_t pos, uint64_t sequence);
  absl::Status Rotate(uint64_t need);
  absl::Status Claim(uint64_t need);
  absl::Status Grow();
  absl::Status Take(uint32_t i);
  void Release(bool seal);
};

Writer::State::~State() {
  prefault.reset();  // stop populating before the region is released
  Release(/*seal=*/false);
  if (lock_fd >= 0) io::Close(lock_fd);
}

void Writer::State::Release(bool seal) {
  if (region < 0) return;
  // A region with no room left for even an empty record is sealed whoever
  // lets go of it, so that readers can retire it.
  seal = seal || tail + RecordSize(0) > ref.size;
  if (seal) ref.sealed_word().store(kSealedMagic, std::memory_order_release);
  ref.owner_pid().store(0, std::memory_order_release);
  (void)Unlock(lock_fd, kLockRegionBase + static_cast<uint64_t>(region));
  if (seal) rep->RegionSealed();  // the background index may cover it now
  region = -1;
}

absl::Status Writer::State::Take(uint32_t i) {
  // The region's pages from the tail page on are backed by blocks before
  // this writer stores into them (a hole, from a sparse copy or an earlier
  // punch, would be a SIGBUS on a full disk): no new blocks for the
  // allocated region it almost always is. The committed tail is checked
  // for plausibility by Claim; a wild one only makes this allocate less.
  const uint64_t from =
      rep->region(i).ref.committed_tail().load(std::memory_order_acquire) &
      ~(kPageSize - 1);
  if (absl::Status s =
          from >= rep->region_size()
              ? absl::OkStatus()
              : io::Allocate(rep->fd(), rep->RegionOffset(i) + from,
                             rep->region_size() - from, rep->path());
      !s.ok()) {
    (void)Unlock(lock_fd, kLockRegionBase + i);
    return s;
  }
  ref = rep->region(i).ref;
  tail = ref.committed_tail().load(std::memory_order_acquire);
  if (ref.owner_pid().load(std::memory_order_acquire) != 0) {
    if (absl::Status s = rep->regions().ScrubTail(i, tail); !s.ok()) {
      (void)Unlock(lock_fd, kLockRegionBase + i);
      return s;
    }
  }
  ref.pending_sequence().store(0, std::memory_order_release);
  ref.owner_pid().store(pid, std::memory_order_release);
  region = i;
  StartPrefault();
  return absl::OkStatus();
}

absl::Status Writer::State::Claim(uint64_t need) {
  if (absl::Status s = rep->LoadNewRegions(); !s.ok()) return s;
  const uint32_t n = rep->known_regions();
  for (uint32_t i = 0; i < n; ++i) {
    StoreRep::RegionInfo& ri = rep->region(i);
    if (!ri.formatted || ri.damaged || ri.ref.sealed()) continue;
    uint64_t t = ri.ref.committed_tail().load(std::memory_order_acquire);
    if (!ri.ref.PlausibleTail(t)) continue;
    const bool full = t + RecordSize(0) > ri.ref.size;
    if (!full && t + need > ri.ref.size) continue;
    absl::StatusOr<bool> got =
        TryLock(lock_fd, kLockRegionBase + i, LockKind::kExclusive);
    if (!got.ok()) return got.status();
    if (!*got) continue;
    // Re-check under the lock: the previous owner may have sealed or
    // filled it between our look and our lock.
    t = ri.ref.committed_tail().load(std::memory_order_acquire);
    if (!ri.ref.sealed() && ri.ref.PlausibleTail(t) &&
        t + RecordSize(0) > ri.ref.size) {
      // Left full but unsealed (its writer exited): seal it for readers.
      ri.ref.sealed_word().store(kSealedMagic, std::memory_order_release);
    }
    if (ri.ref.sealed() || !ri.ref.PlausibleTail(t) || t + need > ri.ref.size) {
      (void)Unlock(lock_fd, kLockRegionBase + i);
      continue;
    }
    return Take(i);
  }
  return Grow();
}

// A fresh region holds any record that passed the size check.
absl::Status Writer::State::Grow() {
  const std::string& path = rep->path();
  if (absl::Status s = Lock(lock_fd, kLockGrowth, LockKind::kExclusive);
      !s.ok())
    return s;
  auto unlock = [&] { (void)Unlock(lock_fd, kLockGrowth); };
  if (absl::Status s = rep->LoadNewRegions(); !s.ok()) {
    unlock();
    return s;
  }
  const uint32_t i = rep->known_regions();
  const uint64_t off = rep->RegionOffset(i);
  if (off + rep->region_size() > rep->options().max_file_size) {
    unlock();
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": growing to ", off + rep->region_size(),
        " bytes would exceed max_file_size ", rep->options().max_file_size));
  }
  absl::Status s = io::Allocate(rep->fd(), off, rep->region_size(), path);
  if (s.ok()) s = rep->regions().LoadForGrowth(i + 1);
  if (s.ok()) s = rep->regions().Format(i, /*fresh=*/true);
  if (!s.ok()) {
    unlock();
    return s;
  }
  absl::StatusOr<bool> got =
      TryLock(lock_fd, kLockRegionBase + i, LockKind::kExclusive);
  if (!got.ok() || !*got) {
    unlock();
    return got.ok() ? absl::InternalError("new region is locked")
                    : got.status();
  }
  rep->regions().PublishCount(i + 1);
  unlock();
  ref = rep->region(i).ref;
  tail = kRegionDataOffset;
  ref.pending_sequence().store(0, std::memory_order_release);
  ref.owner_pid().store(pid, std::memory_order_release);
  region = i;
  StartPrefault();
  return absl::OkStatus();
}

uint64_t Writer::State::PlaceAt() const {
  const uint64_t page_start = tail / kPageSize * kPageSize;
  if (tail == page_start) return tail;
  // A Sync() made bytes of the tail page durable: never write that page
  // again; resume on the next page after a marker.
  const uint64_t durable =
      ref.durable_tail_word().load(std::memory_order_acquire);
  if (durable <= page_start || durable > tail) return tail;
  return page_start + kPageSize + kMarkerSize;
}

void Writer::State::WriteResumeMarker(uint64_t pos, uint64_t sequence) {
  RecordHeader m;
  m.length = kResumeMarkerLength;
  m.type = RecordType::kPadding;
  m.sequence = sequence;
  char* p = ref.base + pos;
  m.EncodeTo(p);
  EncodeFixed64(p + kRecordHeaderSize, tail);
  EncodeFixed64(p + kRecordChecksumOffset,
                RecordChecksum(p, kResumeMarkerLength, ref.seed));
}

void Writer::State::StartPrefault() {
  if (prefault == nullptr) return;
  prefault_end = tail & ~(kPageSize - 1);
  // The first stretch is populated here: the helper thread starts from the
  // same page as the writer, and the two would fault the same pages while
  // it wakes up. Past this stretch the helper stays ahead. Inline, the
  // first two steps (the window then grows a step per step written).
  const uint64_t stretch =
      inline_step != 0 ? 2 * inline_step : kSyncPrefaultBytes;
  const uint64_t first =
      std::min(ref.size, (tail + stretch) & ~(kPageSize - 1));
  if (first > prefault_end) {
    Prefaulter::PopulateNow(ref.base + prefault_end, ref.base + first);
    prefault_end = first;
  }
  Prefault();
}

void Writer::State::Prefault() {
  const uint64_t window = rep->options().prefault_bytes;
  uint64_t want = std::min(ref.size, (tail + window) & ~(kPageSize - 1));
  if (inline_step != 0) {
    // In this thread: at most two steps per call, so that no append pays
    // for more than that; the window fills a step per step written.
    want = std::min(want, prefault_end + 2 * inline_step);
  }
  if (want > prefault_end) {
    prefault->Request(ref.base + prefault_end, ref.base + want);
    prefault_end = want;
  }
  if (prefault_end >= ref.size) {
    prefault_at = UINT64_MAX;
  } else if (inline_step != 0) {
    // Again once the tail has moved a step (while the window is full: once
    // it has moved a step past window bytes behind its end).
    prefault_at =
        std::max(tail, prefault_end - std::min(prefault_end, window)) +
        inline_step;
  } else {
    // Ask again when a quarter of the window is used up.
    prefault_at = prefault_end - window * 3 / 4;
  }
}

absl::Status Writer::State::Rotate(uint64_t need) {
  Release(/*seal=*/true);
  return Claim(need);
}

absl::Status Writer::State::Write(RecordType type, uint64_t id,
                                  std::string_view value, bool assign_id,
                                  uint64_t sequence, uint64_t* assigned) {
  if (absl::Status s = CheckPayloadSize(value.size(), rep->region_size());
      !s.ok())
    return s;
  const uint32_t len = static_cast<uint32_t>(value.size());
  const uint64_t size = RecordSize(len);
  // Room to claim: the record, plus a page skip and a resume marker in case
  // the claimed region's tail page is closed (see ResumeMarkerAfterGap).
  const uint64_t claim = size + kPageSize + kMarkerSize;
  if (region < 0) {
    if (absl::Status s = Claim(claim); !s.ok()) return s;
  } else if (tail + size > ref.size) {
    if (absl::Status s = Rotate(claim); !s.ok()) return s;
  }
  uint64_t at = PlaceAt();
  if (at + size > ref.size) {
    if (absl::Status s = Rotate(claim); !s.ok()) return s;
    at = PlaceAt();
  }
  RecordHeader h;
  h.length = len;
  h.type = type;
  if (sequence == 0) {
    ref.pending_sequence().store(kPendingUnknown, std::memory_order_release);
    h.sequence = rep->next_sequence().fetch_add(1, std::memory_order_seq_cst);
  } else {
    h.sequence = sequence;
    auto next = rep->next_sequence();
    uint64_t cur = next.load(std::memory_order_acquire);
    while (cur <= sequence &&
           !next.compare_exchange_weak(cur, sequence + 1,
                                       std::memory_order_seq_cst)) {
    }
  }
  // After the allocation (a seq_cst RMW): a tailer that set the flag before
  // it is seen here; one that sets it later sees the pending word.
  const bool wake = rep->tail_waiters().load(std::memory_order_seq_cst) != 0;
  ref.pending_sequence().store(h.sequence, std::memory_order_release);
  h.id = assign_id ? h.sequence : id;
  if (at != tail) WriteResumeMarker(at - kMarkerSize, h.sequence);
  char* p = ref.base + at;
  h.EncodeTo(p);
  if (len != 0) std::memcpy(p + kRecordHeaderSize, value.data(), len);
  const uint64_t padded = size - kRecordHeaderSize;
  if (padded != len) std::memset(p + kRecordHeaderSize + len, 0, padded - len);
  EncodeFixed64(p + kRecordChecksumOffset, RecordChecksum(p, len, ref.seed));
  tail = at + size;
  ref.committed_tail().store(tail, std::memory_order_release);
  if (tail >= prefault_at) Prefault();
  if (wake && rep->tail_waiters().exchange(0, std::memory_order_seq_cst)) {
    rep->tail_futex().fetch_add(1, std::memory_order_seq_cst);
    // Not FUTEX_PRIVATE: waiters are other processes mapping the same page.
    ::syscall(SYS_futex, rep->tail_futex_address(), FUTEX_WAKE, INT_MAX,
              nullptr, nullptr, 0);
  }
  if (assigned != nullptr) *assigned = h.id;
  return absl::OkStatus();
}

// --- public Writer

Writer::Writer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Writer::~Writer() = default;

absl::Status Writer::Put(uint64_t id, std::string_view value) {
  return state_->Write(RecordType::kPut, id, value, false, 0, nullptr);
}

absl::StatusOr<uint64_t> Writer::Append(std::string_view value) {
  uint64_t id = 0;
  absl::Status s = state_->Write(RecordType::kPut, 0, value, true, 0, &id);
  if (!s.ok()) return s;
  return id;
}

absl::Status Writer::Delete(uint64_t id) {
  return state_->Write(RecordType::kDelete, id, {}, false, 0, nullptr);
}

int64_t Writer::region() const { return state_->region; }

absl::Status StoreRep::WriteWithSequence(Writer& w, RecordType type,
                                         uint64_t id, uint64_t sequence,
                                         std::string_view value) {
  if (sequence == 0) {
    return absl::InvalidArgumentError("sequence number 0 is reserved");
  }
  if (!IsUserRecord(type)) {
    return absl::InvalidArgumentError("only puts and deletes can be written");
  }
  return w.state_->Write(type, id, value, false, sequence, nullptr);
}

absl::StatusOr<std::unique_ptr<Writer>> StoreRep::NewWriter() {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  auto st = std::make_unique<Writer::State>();
  st->rep = this;
  st->pid = static_cast<uint32_t>(::getpid());
  if (options_.prefault_bytes != 0) {
    const bool background = options_.prefault_mode != PrefaultMode::kInline;
    if (!background) {
      st->inline_step = std::max(
          kPageSize, CurrentTuning().prefault_step_bytes & ~(kPageSize - 1));
    }
    st->prefault = std::make_unique<Prefaulter>(background);
  }
  if (absl::Status s = io::Open(path_, O_RDWR, 0, &st->lock_fd); !s.ok())
    return s;
  return std::unique_ptr<Writer>(new Writer(std::move(st)));
}

}  // namespace recmap
