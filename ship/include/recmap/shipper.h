// recmap::Shipper ships a store's log to a NATS JetStream stream, and
// Restore() rebuilds (or follows) a store from such a stream. This is the
// only part of recmap that depends on NATS (library recmap_ship).
//
// Wire format (docs/REPLICATION.md): each JetStream message on subject
// "<prefix>.<store uuid hex>" is one batch, little-endian:
//   u32 magic "RMB1" | u32 record count | 16 B store uuid |
//   u64 first sequence | u64 last sequence | u64 previous batch's last
//   sequence (0 for the first batch) |
//   then per record: u64 id | u64 sequence | u8 type | u32 length | bytes
// with header Nats-Msg-Id = "<subject>-<first sequence>-<last sequence>"
// (JetStream drops a batch published twice) and a header chaining it to
// the batch before it (Nats-Expected-Last-Msg-Id, or for the first batch of
// a run Nats-Expected-Last-Subject-Sequence), so that the server stores a
// batch only right after its predecessor: pipelined publishes never leave
// a gap (docs/REPLICATION.md, "Exactly once").
//
// Errors: Unavailable (no server, server gone), NotFound (no such stream),
// DeadlineExceeded (no ack within the timeout), FailedPrecondition (the
// stream holds another store's batches where this one's should be),
// DataLoss (a batch that does not decode or breaks the sequence chain),
// OutOfRange (the store retired records before they were shipped).
#ifndef RECMAP_SHIP_INCLUDE_RECMAP_SHIPPER_H_
#define RECMAP_SHIP_INCLUDE_RECMAP_SHIPPER_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/record.h"
#include "recmap/store.h"

namespace recmap {

struct NatsOptions {
  // One URL or a comma-separated list (several cluster nodes).
  std::string url = "nats://127.0.0.1:4222";
  std::string stream;  // JetStream stream name
  std::string subject_prefix = "recmap";
  // Bound on every wait: connect, request, ack, next message.
  std::chrono::milliseconds timeout{10000};
};

struct ShipperOptions {
  NatsOptions nats;
  size_t max_batch_records = 64;
  size_t max_batch_bytes = 64 * 1024;
  // A partial batch is published once its first record is this old.
  std::chrono::milliseconds max_batch_delay{5};
  // Batches published and not yet acknowledged. Each batch names its
  // predecessor's msg id (Nats-Expected-Last-Msg-Id), so the server rejects
  // every batch after one that was lost and the shipper re-sends from the
  // stream's last batch: pipelining leaves no gap. On a stream that also
  // holds other subjects (another store) the stream-wide last msg id is
  // not ours: the shipper then chains by the subject's last sequence
  // (Nats-Expected-Last-Subject-Sequence), one batch at a time.
  int max_in_flight = 256;
  // Re-sends (after a rejected or lost batch) in a row without any batch
  // acknowledged before Run gives up with Aborted.
  int max_resyncs = 8;
};

struct ShipperProgress {
  uint64_t resumed_after = 0;    // last sequence found in the stream at start
  uint64_t shipped_records = 0;  // records published by this Shipper
  uint64_t shipped_batches = 0;
  uint64_t acked_through = 0;  // every record <= this is acknowledged
  uint64_t store_next_sequence = 0;
  uint64_t resyncs = 0;        // times shipping resumed from the stream's end
  bool shared_stream = false;  // chaining by subject, one batch in flight
};

// Creates the stream (subjects "<prefix>.>", file storage, `replicas`
// replicas, 2 min dedup window) if it does not exist. For tests and setup.
[[nodiscard]] absl::Status EnsureStream(const NatsOptions& nats, int replicas);

class Shipper {
 public:
  // Connects, checks the stream, and reads back the last batch shipped for
  // this store: shipping resumes right after it. Errors: InvalidArgument,
  // Unavailable, NotFound (stream), DeadlineExceeded, DataLoss (the last
  // message is not a batch), FailedPrecondition (another store's batch).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Shipper>> Create(
      Store& store, const ShipperOptions& options);
  ~Shipper();
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Ships records until `keep_going()` returns false or, with
  // until_caught_up, until the tailer finds nothing new; then waits
  // (bounded) for every ack. `progress` is called about every 200 ms.
  // A batch rejected by the server (its predecessor is not the stream's
  // last), refused or unacknowledged within the timeout makes the shipper
  // wait for the batches still in flight, read the stream's last batch for
  // this store again, and resume after it (ShipperProgress::resyncs).
  // Errors: Unavailable (connection closed), DeadlineExceeded (acks or the
  // read-back overdue), Aborted (max_resyncs re-sends in a row without
  // progress), OutOfRange (records retired before they were shipped),
  // FailedPrecondition / DataLoss (as Create, found at a re-send).
  [[nodiscard]] absl::Status Run(
      bool until_caught_up, const std::function<bool()>& keep_going,
      const std::function<void(const ShipperProgress&)>& progress = nullptr);

  ShipperProgress progress() const;
  const std::string& subject() const;

 private:
  struct State;
  explicit Shipper(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct RestoreOptions {
  NatsOptions nats;
  // Hex uuid of the store to restore; empty: the stream must hold one store.
  std::string store_uuid;
  // Keep applying new batches until keep_going() returns false.
  bool follow = false;
  // Region size of a new OUT; 0: the source's (carried by each batch's
  // Recmap-Region-Size header), else Options::region_size.
  uint64_t region_size = 0;
};

struct RestoreStats {
  uint64_t batches = 0;
  uint64_t records = 0;        // records applied by this call
  uint64_t skipped = 0;        // records already in `out` (resume)
  uint64_t duplicates = 0;     // records seen twice in the stream
  uint64_t gaps = 0;           // breaks of the batch chain
  uint64_t last_sequence = 0;  // source sequence of the last record seen
  std::string store_uuid;
};

// Builds `out` from the stream (or, if `out` exists, continues it after
// the highest sequence it holds). Ids, sequence numbers (holes included),
// types, values and their order are the source's, so `recmap dump --json`
// of the source and of OUT agree once both are compacted.
// Errors: InvalidArgument, Unavailable, NotFound (no stream, or no batch
// within the timeout), DeadlineExceeded, FailedPrecondition (several
// stores, no store_uuid), DataLoss (a batch that does not decode), and the
// Store's write errors.
[[nodiscard]] absl::Status Restore(
    const RestoreOptions& options, const std::string& out,
    const Options& store_options, const std::function<bool()>& keep_going,
    RestoreStats* stats,
    const std::function<void(const RestoreStats&)>& progress = nullptr);

// The batch codec, exposed for tests and tools.
struct ShipRecord {
  uint64_t id = 0;
  uint64_t sequence = 0;
  RecordType type = RecordType::kPut;
  std::string_view value;
};
struct ShipBatch {
  std::array<uint8_t, 16> uuid{};
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  uint64_t previous_last_sequence = 0;
  std::vector<ShipRecord> records;  // views into the decoded buffer
};
void EncodeShipBatchHeader(const ShipBatch& batch, std::string* out);
void EncodeShipRecord(const ShipRecord& r, std::string* out);
[[nodiscard]] absl::Status DecodeShipBatch(std::string_view data,
                                           ShipBatch* batch);
std::string UuidHex(const std::array<uint8_t, 16>& uuid);

}  // namespace recmap

#endif  // RECMAP_SHIP_INCLUDE_RECMAP_SHIPPER_H_
