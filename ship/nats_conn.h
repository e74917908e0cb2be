// RAII over a NATS connection and its JetStream context, and the mapping
// of NATS statuses to absl::Status. Internal to recmap_ship.
#ifndef RECMAP_SHIP_NATS_CONN_H_
#define RECMAP_SHIP_NATS_CONN_H_

#include <nats/nats.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "recmap/shipper.h"

namespace recmap::ship_internal {

absl::Status FromNats(natsStatus s, int jerr, std::string_view what);

class NatsConn {
 public:
  NatsConn() = default;
  ~NatsConn();
  NatsConn(const NatsConn&) = delete;
  NatsConn& operator=(const NatsConn&) = delete;

  // Connects to `nats.url` and opens a JetStream context whose requests
  // wait at most nats.timeout. `jo` may carry async-publish settings.
  absl::Status Connect(const NatsOptions& nats, jsOptions* jo);
  // NotFound if the stream does not exist.
  absl::Status CheckStream(const std::string& stream);

  natsConnection* nc() { return nc_; }
  jsCtx* js() { return js_; }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::string url_;
};

}  // namespace recmap::ship_internal

#endif  // RECMAP_SHIP_NATS_CONN_H_
