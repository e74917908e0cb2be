// recmap_ship_bench: `recmap ship` throughput against the raw JetStream
// publish ceiling, and restore throughput, on a real 3-node nats-server
// cluster on loopback (ship/testing/nats_cluster.h, the test fixture),
// stream with 3 replicas, file storage.
//
//   recmap_ship_bench [--dir D] [--records N] [--rounds R] [--json]
//
// Each round, interleaved so that machine noise hits all three alike (ship
// first: on a stream whose last message is another subject's the shipper
// falls back to one batch in flight):
//   ship     a Shipper ships the N records of a store (100-byte values)
//            from the first record until every batch is acknowledged
//            (connect and read-back included);
//   raw      js_PublishMsgAsync of N/64 messages of the size a 64-record
//            batch of 100-byte records has, each with a Nats-Msg-Id, at
//            most `in_flight` unacknowledged (the shipper's window): the
//            ceiling for the same batching;
//   restore  Restore() builds a store from the shipped subject.
// The stream is purged after each round. Prints a table and, with --json,
// one JSON line per round and one with the medians.
#include <nats/nats.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nats_cluster.h"
#include "recmap/shipper.h"
#include "recmap/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using recmap::testing::NatsCluster;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Publishes `messages` messages of `bytes` bytes as fast as the window
// allows; returns seconds, or -1 on error.
double RawPublish(const NatsCluster& c, const std::string& subject,
                  uint64_t messages, size_t bytes, int in_flight) {
  natsOptions* o = nullptr;
  natsConnection* nc = nullptr;
  if (natsOptions_Create(&o) != NATS_OK) return -1;
  natsOptions_SetURL(o, c.url(0).c_str());
  natsStatus s = natsConnection_Connect(&nc, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK) return -1;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = in_flight;
  jo.PublishAsync.StallWait = 30000;  // as the shipper: wait, do not fail
  jo.Wait = 30000;
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) return -1;
  std::string payload(bytes, 'x');
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 30000;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < messages && s == NATS_OK; ++i) {
    natsMsg* m = nullptr;
    s = natsMsg_Create(&m, subject.c_str(), nullptr, payload.data(),
                       static_cast<int>(payload.size()));
    std::string id = absl::StrCat(subject, "-", i);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(js, &m, &po);
    natsMsg_Destroy(m);
  }
  jsPubOptions cpo;
  jsPubOptions_Init(&cpo);
  cpo.MaxWait = 120000;
  if (s == NATS_OK) s = js_PublishAsyncComplete(js, &cpo);
  double secs = Seconds(t0);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  if (s != NATS_OK)
    std::fprintf(stderr, "recmap_ship_bench: raw publish: %s\n",
                 natsStatus_GetText(s));
  return s == NATS_OK ? secs : -1;
}

bool Purge(const NatsCluster& c) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, c.url(0).c_str()) != NATS_OK) return false;
  jsCtx* js = nullptr;
  bool ok = natsConnection_JetStream(&js, nc, nullptr) == NATS_OK &&
            js_PurgeStream(js, c.stream().c_str(), nullptr, nullptr) == NATS_OK;
  if (js != nullptr) jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  uint64_t n = 2000000;
  int rounds = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dir") {
      dir = val();
    } else if (a == "--records") {
      n = std::stoull(val());
    } else if (a == "--rounds") {
      rounds = std::stoi(val());
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr,
                   "usage: recmap_ship_bench [--dir D] [--records N] "
                   "[--rounds R] [--json]\n");
      return 2;
    }
  }
  if (rounds < 1 || n < 64) return 2;
  // The cluster's JetStream data goes next to the stores, on the same disk.
  ::setenv("TMPDIR", dir.c_str(), 1);
  absl::StatusOr<std::unique_ptr<NatsCluster>> cluster =
      NatsCluster::Start("SHIPBENCH", 3);
  if (!cluster.ok()) {
    std::fprintf(stderr, "recmap_ship_bench: %s\n",
                 cluster.status().ToString().c_str());
    return 1;
  }
  NatsCluster& c = **cluster;
  const std::string work = c.dir() + "/stores";
  std::filesystem::create_directories(work);
  const std::string src = work + "/src.rmap";
  {
    recmap::Options o;
    o.create_if_missing = true;
    auto store = recmap::Store::Open(src, o);
    if (!store.ok()) return 1;
    std::string value(100, 'v');
    for (uint64_t i = 0; i < n; ++i) {
      value[i % 100] = static_cast<char>('a' + i % 26);
      if (!(*store)->Put(i, value).ok()) return 1;
    }
    if (!(*store)->Sync().ok()) return 1;
  }
  recmap::Options ro;
  ro.read_only = true;
  auto store = recmap::Store::Open(src, ro);
  if (!store.ok()) return 1;

  recmap::ShipperOptions so;
  so.nats.url = c.urls();
  so.nats.stream = c.stream();
  so.nats.timeout = std::chrono::seconds(30);
  const size_t batch_bytes = 48 + so.max_batch_records * (21 + 100);
  const uint64_t messages = n / so.max_batch_records;

  struct Round {
    double raw = 0, ship = 0, restore = 0;  // records/s
  };
  std::vector<Round> results;
  std::printf(
      "recmap_ship_bench: %llu records of 100 B, %zu a message (%zu B), "
      "window %d, 3 nodes, 3 replicas, file storage\n",
      static_cast<unsigned long long>(n), so.max_batch_records, batch_bytes,
      so.max_in_flight);
  std::printf("%5s %14s %14s %8s %14s\n", "round", "raw_rec/s", "ship_rec/s",
              "ship/raw", "restore_rec/s");
  for (int r = 0; r < rounds; ++r) {
    Round res;

    recmap::ShipperOptions rso = so;
    rso.nats.subject_prefix = absl::StrCat("recmap.r", r);
    auto t0 = Clock::now();
    auto sh = recmap::Shipper::Create(**store, rso);
    absl::Status s = sh.status();
    if (s.ok()) s = (*sh)->Run(true, [] { return true; });
    double ship_s = Seconds(t0);
    if (!s.ok()) {
      std::fprintf(stderr, "recmap_ship_bench: ship: %s\n",
                   s.ToString().c_str());
      return 1;
    }
    res.ship = n / ship_s;
    if ((*sh)->progress().resyncs != 0 || (*sh)->progress().shared_stream)
      std::fprintf(stderr, "recmap_ship_bench: ship resynced %llu times%s\n",
                   static_cast<unsigned long long>((*sh)->progress().resyncs),
                   (*sh)->progress().shared_stream ? " (shared stream)" : "");
    sh->reset();

    double raw_s = RawPublish(c, absl::StrCat("recmap.raw", r), messages,
                              batch_bytes, so.max_in_flight);
    if (raw_s <= 0) {
      std::fprintf(stderr, "recmap_ship_bench: raw publish failed\n");
      return 1;
    }
    res.raw = messages * so.max_batch_records / raw_s;

    recmap::RestoreOptions rro;
    rro.nats = rso.nats;
    rro.store_uuid = recmap::UuidHex((*store)->info().uuid);
    recmap::RestoreStats st;
    const std::string out = work + "/restored.rmap";
    recmap::Options wo;
    auto t1 = Clock::now();
    s = recmap::Restore(
        rro, out, wo, [] { return true; }, &st);
    double restore_s = Seconds(t1);
    if (!s.ok() || st.records != n || st.gaps != 0 || st.duplicates != 0) {
      std::fprintf(stderr,
                   "recmap_ship_bench: restore: %s (%llu records, %llu gaps, "
                   "%llu duplicates)\n",
                   s.ToString().c_str(),
                   static_cast<unsigned long long>(st.records),
                   static_cast<unsigned long long>(st.gaps),
                   static_cast<unsigned long long>(st.duplicates));
      return 1;
    }
    res.restore = n / restore_s;
    std::filesystem::remove(out);
    std::filesystem::remove(out + ".idx");
    if (!Purge(c)) {
      std::fprintf(stderr, "recmap_ship_bench: purge failed\n");
      return 1;
    }
    std::printf("%5d %14.0f %14.0f %7.0f%% %14.0f\n", r + 1, res.raw, res.ship,
                100 * res.ship / res.raw, res.restore);
    std::fflush(stdout);
    results.push_back(res);
  }
  std::vector<double> raw, ship, restore, ratio;
  for (const Round& r : results) {
    raw.push_back(r.raw);
    ship.push_back(r.ship);
    restore.push_back(r.restore);
    ratio.push_back(r.ship / r.raw);
  }
  std::printf("%5s %14.0f %14.0f %7.0f%% %14.0f\n", "med", Median(raw),
              Median(ship), 100 * Median(ratio), Median(restore));
  if (json) {
    for (size_t i = 0; i < results.size(); ++i) {
      std::printf(
          "{\"workload\":\"ship\",\"round\":%zu,\"records\":%llu,"
          "\"batch_records\":%zu,\"in_flight\":%d,\"raw_rps\":%.0f,"
          "\"ship_rps\":%.0f,\"ship_vs_raw\":%.3f,\"restore_rps\":%.0f}\n",
          i + 1, static_cast<unsigned long long>(n), so.max_batch_records,
          so.max_in_flight, results[i].raw, results[i].ship,
          results[i].ship / results[i].raw, results[i].restore);
    }
    std::printf(
        "{\"workload\":\"ship\",\"round\":\"median\",\"records\":%llu,"
        "\"raw_rps\":%.0f,\"ship_rps\":%.0f,\"ship_vs_raw\":%.3f,"
        "\"restore_rps\":%.0f}\n",
        static_cast<unsigned long long>(n), Median(raw), Median(ship),
        Median(ratio), Median(restore));
  }
  return 0;
}
