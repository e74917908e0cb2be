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
// with header Nats-Msg-Id = "<uuid hex>-<first sequence>" so that JetStream
// drops a batch published twice.
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
  // Batches published and not yet acknowledged. 1 (the default) waits for
  // each batch's ack before the next: no gap is possible. More pipelines
  // the publishes, but a batch that fails while a later one lands leaves a
  // gap in the stream (restore and follow report it).
  int max_in_flight = 1;
};

struct ShipperProgress {
  uint64_t resumed_after = 0;    // last sequence found in the stream at start
  uint64_t shipped_records = 0;  // records published by this Shipper
  uint64_t shipped_batches = 0;
  uint64_t acked_through = 0;  // every record <= this is acknowledged
  uint64_t store_next_sequence = 0;
};

// Creates the stream (subjects "<prefix>.>", file storage, `replicas`
// replicas, 2 min dedup window) if it does not exist. For tests and setup.
[[nodiscard]] absl::Status EnsureStream(const NatsOptions& nats, int replicas);

class Shipper {
 public:
  // Connects, checks the stream, and reads back the last batch shipped for
  // this store: shipping resumes right after it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Shipper>> Create(
      Store& store, const ShipperOptions& options);
  ~Shipper();
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Ships records until `keep_going()` returns false or, with
  // until_caught_up, until the tailer finds nothing new; then waits
  // (bounded) for every ack. `progress` is called about every 200 ms.
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

// Builds `out` from the stream (or, if `out` exists, continues it: the
// first Stats().records records of the stream are taken as already there).
// Ids, values, deletes and their order are preserved; sequence numbers are
// the restored store's own (equal to the source's when the source's are
// dense, which they are unless a writer died mid-record).
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
