// Restore / follow: an ordered JetStream consumer over the store's subject,
// each batch checked (decode, uuid, sequence chain) and applied in stream
// order, each record with its source id and sequence number (the writer
// path compaction uses: StoreRep::WriteWithSequence), so the sequence space
// -- holes included -- is the source's.
#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nats_conn.h"
#include "recmap/shipper.h"
#include "store_peer.h"
#include "store_rep.h"

namespace recmap {

using ship_internal::FromNats;
using ship_internal::NatsConn;
using Clock = std::chrono::steady_clock;

absl::Status Restore(const RestoreOptions& options, const std::string& out,
                     const Options& store_options,
                     const std::function<bool()>& keep_going,
                     RestoreStats* stats,
                     const std::function<void(const RestoreStats&)>& progress) {
  *stats = RestoreStats();
  if (options.nats.stream.empty())
    return absl::InvalidArgumentError("no stream name given");
  NatsConn conn;
  absl::Status st = conn.Connect(options.nats, nullptr);
  if (!st.ok()) return st;
  st = conn.CheckStream(options.nats.stream);
  for (int attempt = 1; attempt < 3 && absl::IsDeadlineExceeded(st); ++attempt)
    st = conn.CheckStream(options.nats.stream);  // a leader election
  if (!st.ok()) return st;

  std::string filter = options.nats.subject_prefix + "." +
                       (options.store_uuid.empty() ? "*" : options.store_uuid);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = options.nats.stream.c_str();
  so.Ordered = true;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus ns = NATS_OK;
  // Creating the consumer can time out while the cluster elects a leader
  // (a node just died): retry, within three timeouts in all.
  for (int attempt = 0; attempt < 3; ++attempt) {
    jerr = static_cast<jsErrCode>(0);
    ns = js_SubscribeSync(&sub, conn.js(), filter.c_str(), nullptr, &so, &jerr);
    if (ns != NATS_TIMEOUT) break;
  }
  if (ns != NATS_OK)
    return FromNats(ns, jerr, absl::StrCat("cannot consume ", filter));
  struct SubGuard {
    natsSubscription* s;
    ~SubGuard() {
      natsSubscription_Unsubscribe(s);
      natsSubscription_Destroy(s);
    }
  } guard{sub};

  // OUT is created when the first batch arrives: its region size is the
  // source's (the batch's Recmap-Region-Size header) unless one is given.
  struct stat sb;
  const bool exists = ::stat(out.c_str(), &sb) == 0;
  std::unique_ptr<Store> store;
  std::unique_ptr<Writer> writer;
  uint64_t skip_through = 0;  // records OUT already holds (a resume)
  auto open_out = [&](natsMsg* first) -> absl::Status {
    Options so2 = store_options;
    so2.create_if_missing = !exists;
    so2.read_only = false;
    if (options.region_size != 0) {
      so2.region_size = options.region_size;
    } else if (first != nullptr) {
      const char* rs = nullptr;
      if (natsMsgHeader_Get(first, "Recmap-Region-Size", &rs) == NATS_OK &&
          rs != nullptr) {
        uint64_t v = std::strtoull(rs, nullptr, 10);
        if (v != 0) so2.region_size = v;
      }
    }
    absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(out, so2);
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
    absl::StatusOr<std::unique_ptr<Writer>> w = store->NewWriter();
    if (!w.ok()) return w.status();
    writer = std::move(*w);
    const uint64_t next = store->Stats().next_sequence;
    skip_through = exists && next > 0 ? next - 1 : 0;
    return absl::OkStatus();
  };
  // The writer goes before the store.
  struct WriterGuard {
    std::unique_ptr<Writer>* w;
    ~WriterGuard() { w->reset(); }
  } writer_guard{&writer};
  if (exists) {
    if (absl::Status s = open_out(nullptr); !s.ok()) return s;
  }

  bool have_uuid = false;
  std::array<uint8_t, 16> uuid{};
  uint64_t last_seq = 0;
  auto last_progress = Clock::now();
  auto last_sync = Clock::now();
  bool seen_any = false;
  const auto slice = std::chrono::milliseconds(200);
  auto idle_since = Clock::now();
  ShipBatch b;
  while (true) {
    if (options.follow && !keep_going()) break;
    natsMsg* m = nullptr;
    ns = natsSubscription_NextMsg(&m, sub, slice.count());
    if (ns == NATS_TIMEOUT) {
      if (options.follow) {
        if (store != nullptr &&
            Clock::now() - last_sync >= std::chrono::seconds(1)) {
          if (absl::Status s = store->Sync(); !s.ok()) return s;
          last_sync = Clock::now();
        }
        continue;
      }
      if (Clock::now() - idle_since < options.nats.timeout) continue;
      if (!seen_any)
        return absl::NotFoundError(absl::StrCat(
            "stream '", options.nats.stream, "' holds no recmap batches on ",
            filter, " (waited ", options.nats.timeout.count(), " ms)"));
      return absl::DeadlineExceededError(absl::StrCat(
          "stream '", options.nats.stream, "' stopped delivering after ",
          stats->batches, " batches"));
    }
    if (ns != NATS_OK) return FromNats(ns, 0, absl::StrCat("reading ", filter));
    idle_since = Clock::now();
    seen_any = true;
    uint64_t pending = 1;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
    }
    absl::Status dec = DecodeShipBatch(
        std::string_view(natsMsg_GetData(m),
                         static_cast<size_t>(natsMsg_GetDataLength(m))),
        &b);
    if (!dec.ok()) {
      std::string subj = natsMsg_GetSubject(m);
      natsMsg_Destroy(m);
      return absl::DataLossError(
          absl::StrCat("message on ", subj, ": ", dec.message()));
    }
    if (!have_uuid) {
      uuid = b.uuid;
      have_uuid = true;
      stats->store_uuid = UuidHex(uuid);
    } else if (b.uuid != uuid) {
      natsMsg_Destroy(m);
      return absl::FailedPreconditionError(
          absl::StrCat("stream '", options.nats.stream,
                       "' holds batches of more than one "
                       "store (",
                       stats->store_uuid, ", ", UuidHex(b.uuid),
                       "); choose one with --store UUID"));
    }
    std::string subj_uuid = natsMsg_GetSubject(m);
    subj_uuid = subj_uuid.substr(subj_uuid.rfind('.') + 1);
    if (subj_uuid != UuidHex(b.uuid)) {
      natsMsg_Destroy(m);
      return absl::FailedPreconditionError(
          absl::StrCat("subject ", natsMsg_GetSubject(m),
                       " holds a batch of store ", UuidHex(b.uuid)));
    }
    if (store == nullptr) {
      if (absl::Status s = open_out(m); !s.ok()) {
        natsMsg_Destroy(m);
        return s;
      }
    }
    if (b.previous_last_sequence != last_seq && b.first_sequence > last_seq)
      ++stats->gaps;
    ++stats->batches;
    for (const ShipRecord& r : b.records) {
      if (r.sequence <= last_seq) {
        ++stats->duplicates;
        continue;
      }
      last_seq = r.sequence;
      if (r.sequence <= skip_through) {
        ++stats->skipped;
        continue;
      }
      absl::Status s = StorePeer::Rep(*store).WriteWithSequence(
          *writer, r.type, r.id, r.sequence, r.value);
      if (!s.ok()) {
        natsMsg_Destroy(m);
        return s;
      }
      ++stats->records;
    }
    stats->last_sequence = last_seq;
    natsMsg_Destroy(m);
    if (progress &&
        Clock::now() - last_progress >= std::chrono::milliseconds(200)) {
      last_progress = Clock::now();
      progress(*stats);
    }
    if (!options.follow && pending == 0) break;
  }
  if (progress) progress(*stats);
  if (store != nullptr) {
    if (absl::Status s = store->Sync(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace recmap
