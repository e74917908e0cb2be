// Shipper: tailer -> batches -> pipelined JetStream async publishes, each
// batch chained to its predecessor so that the server stores it only right
// after it; on any failure, resume after the stream's last batch.
//
// Invariants:
// - Batches are cut only from consecutive tailer output, so a batch's first
//   record is the one after its predecessor's last.
// - A batch's Nats-Msg-Id ("<uuid>-<first>-<last>") names its content (the
//   source's records are immutable), so equal ids mean equal batches.
// - Chained mode: batch i carries Nats-Expected-Last-Msg-Id = id(i-1); the
//   first batch of a run (after Create or a resync) carries the subject's
//   last stream sequence (Nats-Expected-Last-Subject-Sequence) and the id
//   of the batch read back. JetStream checks the msg id expectation when it
//   applies the message (in Raft order), so a batch lands only directly
//   after its predecessor: once one batch is lost every later one in flight
//   is rejected, never stored after a hole.
// - Shared mode (the stream's last message is another subject's): one
//   batch in flight, each expecting the subject's last sequence, which the
//   previous ack gave.
// - After any failure the shipper stops publishing, waits for every batch
//   in flight to be acknowledged, rejected or timed out, and reads the
//   subject's last message again: the next batch follows it.
#include "recmap/shipper.h"

#include <deque>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nats_conn.h"
#include "recmap/tailer.h"

namespace recmap {

using ship_internal::FromNats;
using ship_internal::NatsConn;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kHeaderSize = 48;

uint64_t LoadLE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

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
  std::string subject;
  std::string uuid_hex;
  std::array<uint8_t, 16> uuid{};
  std::string region_size;  // Recmap-Region-Size header value

  // The stream's end for this subject, as last read back or acknowledged.
  uint64_t last_shipped = 0;  // last record sequence in a published batch
  std::string last_id;        // msg id of the batch last published
  bool shared = false;        // chain by subject sequence, one in flight

  std::mutex mu;  // guards the fields below (ack callbacks run on a thread)
  // The first failure since the last resync: a rejected batch, a publish
  // error, an ack timeout.
  absl::Status failure;
  std::string failure_last_id;  // the server's last msg id, if it said
  bool failure_wrong_last = false;
  uint64_t acked_subject_seq = 0;  // stream sequence of the last acked batch
  ShipperProgress progress;

  // Last member: destroyed first, while the fields its ack callbacks touch
  // are still alive.
  NatsConn conn;

  // Unique per subject and content: equal ids mean equal batches.
  std::string MsgId(uint64_t first, uint64_t last) const {
    return absl::StrCat(subject, "-", first, "-", last);
  }

  // Reads the subject's last message: sets last_shipped, last_id and
  // acked_subject_seq, and whether the stream's last message is ours.
  absl::Status ReadBack();

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                    void* closure) {
    auto* st = static_cast<State*>(closure);
    const char* data = natsMsg_GetData(msg);
    const int len = natsMsg_GetDataLength(msg);
    uint64_t first = 0, last = 0;
    if (len >= static_cast<int>(kHeaderSize)) {
      first = LoadLE64(data + 24);
      last = LoadLE64(data + 32);
    }
    {
      std::lock_guard<std::mutex> l(st->mu);
      if (pae != nullptr || pa == nullptr) {
        if (st->failure.ok()) {
          const char* text = pae != nullptr ? pae->ErrText : nullptr;
          const int code = pae != nullptr ? static_cast<int>(pae->ErrCode) : 0;
          st->failure = FromNats(
              pae != nullptr && pae->Err != NATS_OK ? pae->Err : NATS_ERR, code,
              absl::StrCat("batch of sequences ", first, "-", last,
                           " not stored",
                           text != nullptr ? absl::StrCat(" (", text, ")")
                                           : std::string()));
          st->failure_wrong_last = code == JSStreamWrongLastMsgIDErr ||
                                   code == JSStreamWrongLastSequenceErr;
          st->failure_last_id.clear();
          if (code == JSStreamWrongLastMsgIDErr && text != nullptr) {
            std::string_view t(text);
            size_t colon = t.rfind(": ");
            if (colon != std::string_view::npos)
              st->failure_last_id = std::string(t.substr(colon + 2));
          }
        }
      } else if (st->failure.ok()) {
        // Stored, or already stored (a duplicate: the same id, hence the
        // same batch). Acks of one subject arrive in stream order.
        if (last > st->progress.acked_through)
          st->progress.acked_through = last;
        st->acked_subject_seq = pa->Sequence;
      }
    }
    natsMsg_Destroy(msg);
  }
};

absl::Status Shipper::State::ReadBack() {
  natsMsg* lastmsg = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus ns =
      js_GetLastMsg(&lastmsg, conn.js(), options.nats.stream.c_str(),
                    subject.c_str(), nullptr, &jerr);
  for (int attempt = 1; attempt < 3 && ns == NATS_TIMEOUT; ++attempt) {
    jerr = static_cast<jsErrCode>(0);  // a leader election
    ns = js_GetLastMsg(&lastmsg, conn.js(), options.nats.stream.c_str(),
                       subject.c_str(), nullptr, &jerr);
  }
  uint64_t subject_seq = 0;
  if (ns == NATS_OK) {
    ShipBatch b;
    absl::Status dec = DecodeShipBatch(
        std::string_view(natsMsg_GetData(lastmsg),
                         static_cast<size_t>(natsMsg_GetDataLength(lastmsg))),
        &b);
    const char* id = nullptr;
    if (natsMsgHeader_Get(lastmsg, "Nats-Msg-Id", &id) != NATS_OK) id = nullptr;
    subject_seq = natsMsg_GetSequence(lastmsg);
    std::string idstr = id != nullptr ? id : "";
    natsMsg_Destroy(lastmsg);
    if (!dec.ok())
      return absl::DataLossError(absl::StrCat(
          "last message on ", subject, " in stream '", options.nats.stream,
          "' is not a recmap batch: ", dec.message()));
    if (b.uuid != uuid)
      return absl::FailedPreconditionError(absl::StrCat(
          "stream '", options.nats.stream, "' subject ", subject,
          " holds batches of another store (uuid ", UuidHex(b.uuid), ")"));
    last_shipped = b.last_sequence;
    last_id = idstr;
  } else if (jerr == JSNoMessageFoundErr || ns == NATS_NOT_FOUND) {
    last_shipped = 0;
    last_id.clear();
  } else {
    return FromNats(ns, jerr,
                    absl::StrCat("cannot read the last batch of ", subject));
  }
  // Is the stream's last message ours? If not, the stream-wide last msg id
  // is another subject's and cannot chain our batches.
  jsStreamInfo* si = nullptr;
  jerr = static_cast<jsErrCode>(0);
  ns = js_GetStreamInfo(&si, conn.js(), options.nats.stream.c_str(), nullptr,
                        &jerr);
  if (ns != NATS_OK) {
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return FromNats(ns, jerr,
                    absl::StrCat("stream '", options.nats.stream, "' info"));
  }
  const uint64_t stream_last = si->State.LastSeq;
  const uint64_t stream_msgs = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  if (stream_msgs != 0 && stream_last != subject_seq) shared = true;
  std::lock_guard<std::mutex> l(mu);
  failure = absl::OkStatus();
  failure_wrong_last = false;
  failure_last_id.clear();
  acked_subject_seq = subject_seq;
  progress.acked_through = last_shipped;
  progress.shared_stream = shared;
  return absl::OkStatus();
}

Shipper::Shipper(std::unique_ptr<State> state) : state_(std::move(state)) {}
Shipper::~Shipper() = default;

absl::StatusOr<std::unique_ptr<Shipper>> Shipper::Create(
    Store& store, const ShipperOptions& options) {
  auto st = std::make_unique<State>();
  st->store = &store;
  st->options = options;
  if (options.nats.stream.empty())
    return absl::InvalidArgumentError("no stream name given");
  if (options.max_in_flight < 1)
    return absl::InvalidArgumentError("max_in_flight must be at least 1");
  st->uuid = store.info().uuid;
  st->uuid_hex = UuidHex(st->uuid);
  st->subject = options.nats.subject_prefix + "." + st->uuid_hex;
  st->region_size = absl::StrCat(store.info().region_size);
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
  s = st->ReadBack();
  if (!s.ok()) return s;
  st->progress.resumed_after = st->last_shipped;
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
  std::unique_ptr<Tailer> tailer;
  auto open_tailer = [&]() -> absl::Status {
    tailer.reset();
    TailerOptions to;
    to.from_sequence = st.last_shipped + 1;
    to.include_deletes = true;
    absl::StatusOr<std::unique_ptr<Tailer>> t = Tailer::Create(*st.store, to);
    if (!t.ok()) return t.status();
    tailer = std::move(*t);
    return absl::OkStatus();
  };
  if (absl::Status s = open_tailer(); !s.ok()) return s;

  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = st.options.nats.timeout.count();

  std::string buf;
  ShipBatch head;
  head.uuid = st.uuid;
  size_t count = 0;
  Clock::time_point batch_start{};
  auto last_progress = Clock::now();
  bool first_of_run = true;   // the next batch follows a read-back
  bool subject_only = false;  // the server's last msg id is unknown ("")
  int resyncs_in_a_row = 0;
  uint64_t acked_at_resync = st.last_shipped;

  auto failure = [&]() -> absl::Status {
    std::lock_guard<std::mutex> l(st.mu);
    return st.failure;
  };
  auto connection_closed = [&]() {
    return natsConnection_Status(st.conn.nc()) == NATS_CONN_STATUS_CLOSED;
  };
  // Waits for every batch in flight to be acked, rejected or timed out.
  auto drain = [&]() -> absl::Status {
    jsPubOptions dpo;
    jsPubOptions_Init(&dpo);
    // Every publish has its own MaxWait: the pending list empties within
    // about one timeout; allow a second one for the callbacks.
    dpo.MaxWait = 2 * st.options.nats.timeout.count();
    natsStatus c = js_PublishAsyncComplete(st.conn.js(), &dpo);
    if (c != NATS_OK)
      return FromNats(
          c, 0,
          absl::StrFormat("acks not all received within %d ms", dpo.MaxWait));
    return absl::OkStatus();
  };
  // After a failure: drain, read the stream's end back, resume after it.
  auto resync = [&](const absl::Status& why) -> absl::Status {
    if (connection_closed())
      return absl::UnavailableError(
          absl::StrCat("the NATS connection is closed (no server reachable); ",
                       why.message()));
    if (absl::Status d = drain(); !d.ok()) return d;
    std::string server_last;
    bool wrong_last = false;
    {
      std::lock_guard<std::mutex> l(st.mu);
      server_last = st.failure_last_id;
      wrong_last = st.failure_wrong_last;
    }
    if (absl::Status r = st.ReadBack(); !r.ok()) return r;
    if (st.last_shipped > acked_at_resync) resyncs_in_a_row = 0;
    acked_at_resync = st.last_shipped;
    if (++resyncs_in_a_row > st.options.max_resyncs)
      return absl::AbortedError(absl::StrCat(
          st.options.max_resyncs,
          " re-sends in a row without progress; last: ", why.message()));
    if (wrong_last && server_last.empty()) {
      // The server does not know its last msg id (a restarted node whose
      // dedup window holds nothing): chain the first batch by subject
      // sequence alone; its id then becomes the last msg id.
      subject_only = true;
    } else if (wrong_last && !absl::StartsWith(server_last, st.subject + "-")) {
      st.shared = true;  // another subject's message is the stream's last
    }
    {
      std::lock_guard<std::mutex> l(st.mu);
      st.progress.resyncs += 1;
      st.progress.shared_stream = st.shared;
    }
    count = 0;
    buf.clear();
    first_of_run = true;
    return open_tailer();
  };

  auto flush = [&]() -> absl::Status {
    if (count == 0) return absl::OkStatus();
    // The header is written last: it carries the count and last sequence.
    head.previous_last_sequence = st.last_shipped;
    std::string header;
    head.records.resize(count);  // only its size is encoded
    EncodeShipBatchHeader(head, &header);
    std::copy(header.begin(), header.end(), buf.begin());
    natsMsg* m = nullptr;
    natsStatus s = natsMsg_Create(&m, st.subject.c_str(), nullptr, buf.data(),
                                  static_cast<int>(buf.size()));
    const std::string id = st.MsgId(head.first_sequence, head.last_sequence);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    if (s == NATS_OK)
      s = natsMsgHeader_Set(m, "Recmap-Region-Size", st.region_size.c_str());
    std::string subject_seq;
    if (first_of_run || st.shared) {
      std::lock_guard<std::mutex> l(st.mu);
      subject_seq = absl::StrCat(st.acked_subject_seq);
    }
    if (s == NATS_OK && !subject_seq.empty())
      s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence",
                            subject_seq.c_str());
    if (s == NATS_OK && !st.shared && !st.last_id.empty() &&
        !(first_of_run && subject_only))
      s = natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", st.last_id.c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(st.conn.js(), &m, &po);
    if (m != nullptr) natsMsg_Destroy(m);
    if (s != NATS_OK) {
      absl::Status e = FromNats(
          s, 0,
          absl::StrCat("publish of batch from sequence ", head.first_sequence));
      std::lock_guard<std::mutex> l(st.mu);
      if (st.failure.ok()) st.failure = e;
      return absl::OkStatus();  // handled as any failure: resync
    }
    st.last_shipped = head.last_sequence;
    st.last_id = id;
    first_of_run = false;
    subject_only = false;
    {
      std::lock_guard<std::mutex> l(st.mu);
      st.progress.shipped_records += count;
      st.progress.shipped_batches += 1;
    }
    count = 0;
    buf.clear();
    // Shared mode chains by the subject's last sequence, which only the
    // ack gives: one batch in flight.
    if (st.shared) return drain();
    return absl::OkStatus();
  };

  while (true) {
    if (!keep_going()) break;
    if (absl::Status f = failure(); !f.ok()) {
      if (absl::Status r = resync(f); !r.ok()) return r;
      continue;
    }
    if (connection_closed())
      return absl::UnavailableError(
          "the NATS connection is closed (no server reachable)");
    auto wait = std::chrono::nanoseconds(std::chrono::milliseconds(200));
    if (count > 0) {
      auto due = batch_start + st.options.max_batch_delay;
      auto now = Clock::now();
      wait = due > now ? due - now : std::chrono::nanoseconds(0);
    }
    absl::StatusOr<std::optional<RecordView>> got = tailer->Next(wait);
    if (!got.ok()) {
      if (absl::IsOutOfRange(got.status()) || absl::IsNotFound(got.status()))
        return absl::OutOfRangeError(
            absl::StrCat("records after sequence ", st.last_shipped,
                         " were retired before they were shipped: ",
                         got.status().message()));
      return got.status();
    }
    const RecordView* v = got->has_value() ? &**got : nullptr;
    if (v != nullptr &&
        (v->type == RecordType::kPut || v->type == RecordType::kDelete)) {
      if (count == 0) {
        buf.assign(kHeaderSize, '\0');  // header placeholder
        head.first_sequence = v->sequence;
        batch_start = Clock::now();
      }
      ShipRecord r{v->id, v->sequence, v->type, v->value};
      EncodeShipRecord(r, &buf);
      head.last_sequence = v->sequence;
      ++count;
      if (count >= st.options.max_batch_records ||
          buf.size() >= st.options.max_batch_bytes) {
        if (absl::Status f = flush(); !f.ok()) return f;
      }
    } else if (v == nullptr) {
      if (count > 0 &&
          Clock::now() >= batch_start + st.options.max_batch_delay) {
        if (absl::Status f = flush(); !f.ok()) return f;
      } else if (count == 0 && until_caught_up) {
        // Caught up: done once everything in flight is acknowledged.
        absl::Status d = drain();
        absl::Status f = failure();
        if (!f.ok()) continue;  // resync at the top of the loop
        if (!d.ok()) return d;
        break;
      }
    }
    if (progress &&
        Clock::now() - last_progress >= std::chrono::milliseconds(200)) {
      last_progress = Clock::now();
      progress(this->progress());
    }
  }
  // Stopped: publish what is batched and wait for every ack. A failure
  // here is reported, not resynced (the caller asked to stop).
  if (absl::Status f = flush(); !f.ok()) return f;
  if (absl::Status d = drain(); !d.ok()) return d;
  if (absl::Status f = failure(); !f.ok()) return f;
  if (progress) progress(this->progress());
  return absl::OkStatus();
}

}  // namespace recmap
