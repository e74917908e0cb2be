// Shipper: tailer -> batches -> JetStream async publish, resuming after the
// last batch the stream holds for this store.
//
// Invariants: batches are cut only from consecutive tailer output, so every
// batch's first sequence follows the previous batch's last; a batch's
// Nats-Msg-Id is a function of (uuid, first sequence) alone, so a batch
// republished after a crash is dropped by JetStream's dedup window; on
// start the resume point is the last batch the stream acknowledged.
#include "recmap/shipper.h"

#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nats_conn.h"
#include "recmap/tailer.h"

namespace recmap {

using ship_internal::FromNats;
using ship_internal::NatsConn;
using Clock = std::chrono::steady_clock;

absl::Status EnsureStream(const NatsOptions& nats, int replicas) {
  NatsConn conn;
  absl::Status st = conn.Connect(nats, nullptr);
  if (!st.ok()) return st;
  st = conn.CheckStream(nats.stream);
  if (st.ok() || !absl::IsNotFound(st)) return st;
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  std::string subjects = nats.subject_prefix + ".>";
  const char* subj[] = {subjects.c_str()};
  sc.Name = nats.stream.c_str();
  sc.Subjects = subj;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  sc.Replicas = replicas;
  sc.Duplicates = int64_t{120} * 1000 * 1000 * 1000;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, conn.js(), &sc, nullptr, &jerr);
  if (si != nullptr) jsStreamInfo_Destroy(si);
  return FromNats(s, jerr,
                  absl::StrCat("cannot create stream '", nats.stream, "'"));
}

struct Shipper::State {
  Store* store = nullptr;
  ShipperOptions options;
  NatsConn conn;
  std::string subject;
  std::string uuid_hex;
  std::array<uint8_t, 16> uuid{};
  uint64_t last_shipped = 0;  // last sequence put in a published batch

  std::mutex mu;  // guards the fields below (ack callbacks run on a thread)
  absl::Status async_error;
  ShipperProgress progress;
  Clock::time_point last_ack_or_publish = Clock::now();

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                    void* closure) {
    auto* st = static_cast<State*>(closure);
    ShipBatch b;
    const char* data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    absl::Status dec =
        DecodeShipBatch(std::string_view(data, static_cast<size_t>(len)), &b);
    {
      std::lock_guard<std::mutex> l(st->mu);
      if (pae != nullptr || pa == nullptr) {
        if (st->async_error.ok()) {
          st->async_error =
              FromNats(pae != nullptr ? pae->Err : NATS_ERR,
                       pae != nullptr ? static_cast<int>(pae->ErrCode) : 0,
                       absl::StrCat("publish of batch from sequence ",
                                    b.first_sequence, " failed",
                                    pae != nullptr && pae->ErrText != nullptr
                                        ? absl::StrCat(" (", pae->ErrText, ")")
                                        : ""));
        }
      } else if (dec.ok() && b.last_sequence > st->progress.acked_through) {
        st->progress.acked_through = b.last_sequence;
      }
      st->last_ack_or_publish = Clock::now();
    }
    natsMsg_Destroy(msg);
  }
};

Shipper::Shipper(std::unique_ptr<State> state) : state_(std::move(state)) {}
Shipper::~Shipper() = default;

absl::StatusOr<std::unique_ptr<Shipper>> Shipper::Create(
    Store& store, const ShipperOptions& options) {
  auto st = std::make_unique<State>();
  st->store = &store;
  st->options = options;
  if (options.nats.stream.empty())
    return absl::InvalidArgumentError("no stream name given");
  st->uuid = store.info().uuid;
  st->uuid_hex = UuidHex(st->uuid);
  st->subject = options.nats.subject_prefix + "." + st->uuid_hex;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = options.max_in_flight;
  jo.PublishAsync.AckHandler = &State::OnAck;
  jo.PublishAsync.AckHandlerClosure = st.get();
  jo.PublishAsync.StallWait = options.nats.timeout.count();
  absl::Status s = st->conn.Connect(options.nats, &jo);
  if (!s.ok()) return s;
  s = st->conn.CheckStream(options.nats.stream);
  if (!s.ok()) return s;

  // Resume point: the last batch the stream holds for this store.
  natsMsg* last = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus ns =
      js_GetLastMsg(&last, st->conn.js(), options.nats.stream.c_str(),
                    st->subject.c_str(), nullptr, &jerr);
  if (ns == NATS_OK) {
    ShipBatch b;
    absl::Status dec = DecodeShipBatch(
        std::string_view(natsMsg_GetData(last),
                         static_cast<size_t>(natsMsg_GetDataLength(last))),
        &b);
    natsMsg_Destroy(last);
    if (!dec.ok())
      return absl::DataLossError(absl::StrCat(
          "last message on ", st->subject, " in stream '", options.nats.stream,
          "' is not a recmap batch: ", dec.message()));
    if (b.uuid != st->uuid)
      return absl::FailedPreconditionError(absl::StrCat(
          "stream '", options.nats.stream, "' subject ", st->subject,
          " holds batches of another store (uuid ", UuidHex(b.uuid), ")"));
    st->last_shipped = b.last_sequence;
  } else if (jerr != JSNoMessageFoundErr && ns != NATS_NOT_FOUND) {
    return FromNats(
        ns, jerr, absl::StrCat("cannot read the last batch of ", st->subject));
  }
  st->progress.resumed_after = st->last_shipped;
  st->progress.acked_through = st->last_shipped;
  return std::unique_ptr<Shipper>(new Shipper(std::move(st)));
}

ShipperProgress Shipper::progress() const {
  std::lock_guard<std::mutex> l(state_->mu);
  ShipperProgress p = state_->progress;
  p.store_next_sequence = state_->store->Stats().next_sequence;
  return p;
}

const std::string& Shipper::subject() const { return state_->subject; }

absl::Status Shipper::Run(
    bool until_caught_up, const std::function<bool()>& keep_going,
    const std::function<void(const ShipperProgress&)>& progress) {
  State& st = *state_;
  TailerOptions to;
  to.from_sequence = st.last_shipped + 1;
  to.include_deletes = true;
  absl::StatusOr<std::unique_ptr<Tailer>> tailer =
      Tailer::Create(*st.store, to);
  if (!tailer.ok()) return tailer.status();

  std::string buf;
  ShipBatch head;
  head.uuid = st.uuid;
  size_t count = 0;
  Clock::time_point batch_start{};
  auto last_progress = Clock::now();

  // An error from an ack callback, a closed connection, or acks overdue.
  auto async_error = [&]() -> absl::Status {
    if (natsConnection_Status(st.conn.nc()) == NATS_CONN_STATUS_CLOSED)
      return absl::UnavailableError(
          "the NATS connection is closed (no server reachable)");
    std::lock_guard<std::mutex> l(st.mu);
    if (!st.async_error.ok()) return st.async_error;
    if (st.progress.acked_through < st.last_shipped &&
        Clock::now() - st.last_ack_or_publish > st.options.nats.timeout)
      return absl::DeadlineExceededError(absl::StrFormat(
          "no ack for %d ms (acked through sequence %d, shipped through %d)",
          st.options.nats.timeout.count(), st.progress.acked_through,
          st.last_shipped));
    return absl::OkStatus();
  };
  auto flush = [&]() -> absl::Status {
    if (count == 0) return absl::OkStatus();
    // The header is written last: it carries the count and last sequence.
    std::string header;
    head.records.resize(count);  // only its size is encoded
    EncodeShipBatchHeader(head, &header);
    std::copy(header.begin(), header.end(), buf.begin());
    natsMsg* m = nullptr;
    natsStatus s = natsMsg_Create(&m, st.subject.c_str(), nullptr, buf.data(),
                                  static_cast<int>(buf.size()));
    std::string id = absl::StrCat(st.uuid_hex, "-", head.first_sequence);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(st.conn.js(), &m, nullptr);
    if (m != nullptr) natsMsg_Destroy(m);
    if (s != NATS_OK)
      return FromNats(
          s, 0,
          absl::StrCat("publish of batch from sequence ", head.first_sequence));
    // With one batch in flight, the next is published only once this one
    // is acknowledged: a batch lost (a leader change, a node killed) is
    // then never followed by a later one that lands, so the stream has no
    // gap, and a restart resumes after the last batch it holds.
    if (st.options.max_in_flight <= 1) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = st.options.nats.timeout.count();
      natsStatus c = js_PublishAsyncComplete(st.conn.js(), &po);
      if (absl::Status e = async_error(); !e.ok()) return e;
      if (c != NATS_OK)
        return FromNats(c, 0,
                        absl::StrCat("no ack for the batch from sequence ",
                                     head.first_sequence));
    }
    st.last_shipped = head.last_sequence;
    {
      std::lock_guard<std::mutex> l(st.mu);
      st.progress.shipped_records += count;
      st.progress.shipped_batches += 1;
      if (st.progress.acked_through >= head.previous_last_sequence)
        st.last_ack_or_publish = Clock::now();  // nothing was overdue
    }
    head.previous_last_sequence = head.last_sequence;
    count = 0;
    buf.clear();
    return absl::OkStatus();
  };
  head.previous_last_sequence = st.last_shipped;

  absl::Status result;
  RecordView v;
  while (keep_going()) {
    if (absl::Status e = async_error(); !e.ok()) return e;
    auto wait = std::chrono::nanoseconds(std::chrono::milliseconds(200));
    if (count > 0) {
      auto due = batch_start + st.options.max_batch_delay;
      auto now = Clock::now();
      wait = due > now ? due - now : std::chrono::nanoseconds(0);
    }
    absl::StatusOr<bool> got = (*tailer)->Next(&v, wait);
    if (!got.ok()) {
      if (absl::IsOutOfRange(got.status()) || absl::IsNotFound(got.status()))
        result = absl::OutOfRangeError(
            absl::StrCat("records after sequence ", st.last_shipped,
                         " were retired before they were shipped: ",
                         got.status().message()));
      else
        result = got.status();
      break;
    }
    if (*got && (v.type == RecordType::kPut || v.type == RecordType::kDelete)) {
      if (count == 0) {
        buf.assign(48, '\0');  // header placeholder
        head.first_sequence = v.sequence;
        batch_start = Clock::now();
      }
      ShipRecord r{v.id, v.sequence, v.type, v.value};
      EncodeShipRecord(r, &buf);
      head.last_sequence = v.sequence;
      ++count;
      if (count >= st.options.max_batch_records ||
          buf.size() >= st.options.max_batch_bytes) {
        if (absl::Status f = flush(); !f.ok()) return f;
      }
    } else if (!*got) {
      if (count > 0 &&
          Clock::now() >= batch_start + st.options.max_batch_delay) {
        if (absl::Status f = flush(); !f.ok()) return f;
      } else if (count == 0 && until_caught_up) {
        break;
      }
    }
    if (progress &&
        Clock::now() - last_progress >= std::chrono::milliseconds(200)) {
      last_progress = Clock::now();
      progress(this->progress());
    }
  }
  if (absl::Status f = flush(); !f.ok()) return f;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = st.options.nats.timeout.count();
  natsStatus s = js_PublishAsyncComplete(st.conn.js(), &po);
  if (absl::Status e = async_error(); !e.ok()) return e;
  if (s != NATS_OK) {
    absl::Status w =
        FromNats(s, 0,
                 absl::StrFormat("acks not all received within %d ms",
                                 st.options.nats.timeout.count()));
    return w;
  }
  if (progress) progress(this->progress());
  return result;
}

}  // namespace recmap
