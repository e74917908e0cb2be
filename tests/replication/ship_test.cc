// Replication against a real 3-node JetStream cluster (nats_cluster.h):
// shipping under SIGKILL of the shipper and of a NATS node, restore and
// follow byte for byte, and the error cases. No timing assertions: every
// wait has a generous deadline and only bounds a hang.
#include <nats/nats.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "nats_cluster.h"
#include "recmap/shipper.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

using Rec = std::tuple<uint64_t, uint64_t, RecordType, std::string>;

std::vector<Rec> ReadAll(const std::string& path) {
  Options o;
  o.read_only = true;
  std::unique_ptr<Store> s = OpenOrDie(path, o);
  std::vector<Rec> out;
  REQUIRE(s->ForEachRecord([&](const RecordView& v) {
             out.emplace_back(v.id, v.sequence, v.type, std::string(v.value));
             return true;
           }).ok());
  return out;
}

// Appends n records: puts of ids in [0, 5000) (so later ones supersede
// earlier ones) and, one in 16, a delete.
void Write(Store& s, int n, std::mt19937_64& rng) {
  for (int i = 0; i < n; ++i) {
    uint64_t id = rng() % 5000;
    if (rng() % 16 == 0) {
      REQUIRE(s.Delete(id).ok());
    } else {
      REQUIRE(s.Put(id, Payload(id, rng() % 1000, 120)).ok());
    }
  }
}

std::string Log(const TempDir& t, const std::string& name) {
  return t.File(name + ".log");
}

std::string Slurp(const std::string& path) { return ReadFile(path); }

void RestoreAndCompare(const NatsCluster& c, const std::string& src,
                       const std::string& out, RestoreStats* st) {
  RestoreOptions ro;
  ro.nats.url = c.urls();
  ro.nats.stream = c.stream();
  ro.nats.timeout = std::chrono::seconds(20);
  Options so;
  so.prefault_bytes = 0;
  absl::Status s = Restore(
      ro, out, so, [] { return true; }, st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::vector<Rec> a = ReadAll(src);
  std::vector<Rec> b = ReadAll(out);
  REQUIRE(a.size() == b.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < a.size(); ++i) mismatches += a[i] != b[i] ? 1 : 0;
  CHECK(mismatches == 0);
}

TEST_CASE("ship under random SIGKILL of the shipper: each record exactly once",
          "[replication]") {
  NatsCluster c("KILLS");
  TempDir t;
  const std::string src = t.File("src.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::mt19937_64 rng(std::random_device{}());
  const int kCycles = 50;
  const int kRecords = 100000;
  int killed = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    Write(*store, kRecords / kCycles, rng);
    pid_t p = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                     c.stream(), "--timeout", "20"},
                    Log(t, "ship"));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
    ::kill(p, SIGKILL);
    if (WaitFor(p, 60) == 128 + SIGKILL) ++killed;
  }
  pid_t p = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                   c.stream(), "--once", "--timeout", "20"},
                  Log(t, "ship"));
  int rc = WaitFor(p, 120);
  INFO(Slurp(Log(t, "ship")));
  REQUIRE(rc == 0);
  RestoreStats st;
  RestoreAndCompare(c, src, t.File("restored.rmap"), &st);
  std::printf(
      "ship kill test: %d kill cycles, %d records shipped, %llu "
      "batches, duplicates %llu, gaps %llu\n",
      killed, kRecords, static_cast<unsigned long long>(st.batches),
      static_cast<unsigned long long>(st.duplicates),
      static_cast<unsigned long long>(st.gaps));
  CHECK(killed >= 1);
  CHECK(st.records == static_cast<uint64_t>(kRecords));
  CHECK(st.duplicates == 0);
  CHECK(st.gaps == 0);
}

TEST_CASE("ship goes on when a NATS node is SIGKILLed mid-ship",
          "[replication]") {
  NatsCluster c("NODEKILL");
  TempDir t;
  const std::string src = t.File("src.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::mt19937_64 rng(7);
  Write(*store, 20000, rng);
  pid_t p = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                   c.stream(), "--timeout", "10", "--give-up", "90"},
                  Log(t, "ship"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  c.Kill(0);  // the node the shipper connected to first
  Write(*store, 20000, rng);
  // Let the live shipper take the second half too, then stop it and
  // finish with --once (which also resumes from the stream).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ::kill(p, SIGTERM);
  WaitFor(p, 60);
  pid_t q = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                   c.stream(), "--once", "--timeout", "10", "--give-up", "90"},
                  Log(t, "ship"));
  int rc = WaitFor(q, 150);
  INFO(Slurp(Log(t, "ship")));
  REQUIRE(rc == 0);
  RestoreStats st;
  RestoreAndCompare(c, src, t.File("restored.rmap"), &st);
  CHECK(st.records == 40000);
  CHECK(st.duplicates == 0);
  CHECK(st.gaps == 0);
}

TEST_CASE("follow keeps a replica current", "[replication]") {
  NatsCluster c("FOLLOW");
  TempDir t;
  const std::string src = t.File("src.rmap");
  const std::string rep = t.File("replica.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::mt19937_64 rng(11);
  Write(*store, 1000, rng);
  pid_t ship = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                      c.stream(), "--timeout", "20"},
                     Log(t, "ship"));
  // Wait for the first batch, so that follow finds the store's subject.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pid_t follow = Spawn({ToolPath(), "follow", "--nats", c.urls(), "--stream",
                        c.stream(), "--timeout", "30", rep},
                       Log(t, "follow"));
  for (int round = 0; round < 5; ++round) {
    Write(*store, 2000, rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const uint64_t want = 11000;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  uint64_t have = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::access(rep.c_str(), F_OK) == 0) {
      Options ro;
      ro.read_only = true;
      auto r = Store::Open(rep, ro);
      if (r.ok()) have = (*r)->Stats().records;
    }
    if (have >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(follow, SIGTERM);
  ::kill(ship, SIGTERM);
  int frc = WaitFor(follow, 60);
  WaitFor(ship, 60);
  INFO(Slurp(Log(t, "follow")) << Slurp(Log(t, "ship")));
  REQUIRE(have == want);
  CHECK(frc == 0);
  CHECK(ReadAll(src) == ReadAll(rep));
}

TEST_CASE("errors are clear and bounded", "[replication]") {
  TempDir t;
  const std::string src = t.File("src.rmap");
  {
    Options o = SmallOptions();
    o.create_if_missing = true;
    std::unique_ptr<Store> store = OpenOrDie(src, o);
    std::mt19937_64 rng(3);
    Write(*store, 500, rng);
  }
  auto run = [&](std::vector<std::string> args, double limit) {
    std::string log = t.File("err.log");
    ::unlink(log.c_str());
    args.insert(args.begin(), ToolPath());
    pid_t p = Spawn(args, log);
    int rc = WaitFor(p, limit);
    return std::make_pair(rc, Slurp(log));
  };

  SECTION("bad URL") {
    auto [rc, out] = run({"ship", src, "--nats", "nats://127.0.0.1:1",
                          "--stream", "X", "--once", "--timeout", "2"},
                         60);
    INFO(out);
    CHECK(rc > 0);
    CHECK(rc < 128);
    CHECK(out.find("cannot connect") != std::string::npos);
  }
  SECTION("cluster cases") {
    NatsCluster c("ERRS");
    {
      auto [rc, out] = run({"ship", src, "--nats", c.urls(), "--stream",
                            "NOSUCH", "--once", "--timeout", "5"},
                           60);
      INFO(out);
      CHECK(rc > 0);
      CHECK(out.find("not found") != std::string::npos);
    }
    {
      auto [rc, out] = run({"restore", "--nats", c.urls(), "--stream", "NOSUCH",
                            "--timeout", "5", t.File("r0.rmap")},
                           60);
      INFO(out);
      CHECK(rc > 0);
      CHECK(out.find("not found") != std::string::npos);
    }
    // Another store's batch on this store's subject.
    {
      Options ro;
      ro.read_only = true;
      std::string uuid = UuidHex(OpenOrDie(src, ro)->info().uuid);
      ShipBatch b;
      b.uuid.fill(0xab);
      b.first_sequence = b.last_sequence = 1;
      std::string data(48, '\0');
      EncodeShipRecord(ShipRecord{1, 1, RecordType::kPut, "x"}, &data);
      b.records.resize(1);
      std::string header;
      EncodeShipBatchHeader(b, &header);
      data.replace(0, 48, header);
      natsConnection* nc = nullptr;
      REQUIRE(natsConnection_ConnectTo(&nc, c.url(1).c_str()) == NATS_OK);
      jsCtx* js = nullptr;
      REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
      jsPubAck* pa = nullptr;
      std::string subj = "recmap." + uuid;
      REQUIRE(js_Publish(&pa, js, subj.c_str(), data.data(),
                         static_cast<int>(data.size()), nullptr,
                         nullptr) == NATS_OK);
      jsPubAck_Destroy(pa);
      jsCtx_Destroy(js);
      natsConnection_Destroy(nc);
      auto [rc, out] = run({"ship", src, "--nats", c.urls(), "--stream",
                            c.stream(), "--once", "--timeout", "5"},
                           60);
      INFO(out);
      CHECK(rc > 0);
      CHECK(out.find("another store") != std::string::npos);
    }
    // A server that goes away: all nodes killed under a live shipper.
    {
      TempDir t2;
      const std::string s2 = t2.File("s2.rmap");
      Options o = SmallOptions();
      o.create_if_missing = true;
      std::unique_ptr<Store> store = OpenOrDie(s2, o);
      std::mt19937_64 rng(5);
      Write(*store, 500, rng);
      std::string log = t.File("gone.log");
      pid_t p = Spawn({ToolPath(), "ship", s2, "--nats", c.urls(), "--stream",
                       c.stream(), "--timeout", "2", "--give-up", "3"},
                      log);
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      for (int i = 0; i < 3; ++i) c.Kill(i);
      Write(*store, 500, rng);
      int rc = WaitFor(p, 90);
      std::string out = Slurp(log);
      INFO(out);
      CHECK(rc > 0);
      CHECK(rc < 128);
      CHECK(out.find("recmap:") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace recmap::testing

namespace recmap::testing {
namespace {

// Hidden (not run by ctest): `replication_ship_test "[.ship_bench]"`.
// Ships N 100-byte records to the 3-node cluster, then publishes the same
// number of same-size batches raw (js_PublishMsgAsync, same batching), then
// restores; prints records/s of each.
TEST_CASE("ship bench against the raw async-publish ceiling", "[.ship_bench]") {
  const uint64_t n = 200000;
  NatsCluster c("BENCH");
  TempDir t;
  const std::string src = t.File("src.rmap");
  Options o;
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::string value(100, 'v');
  for (uint64_t i = 0; i < n; ++i) REQUIRE(store->Put(i, value).ok());
  using Clock = std::chrono::steady_clock;
  ShipperOptions so;
  so.nats.url = c.urls();
  so.nats.stream = c.stream();
  so.nats.timeout = std::chrono::seconds(30);
  auto t0 = Clock::now();
  auto sh = Shipper::Create(*store, so);
  REQUIRE(sh.ok());
  REQUIRE((*sh)->Run(true, [] { return true; }).ok());
  double ship_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Raw ceiling: the same number of messages of the same size.
  natsConnection* nc = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, c.url(0).c_str()) == NATS_OK);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = so.max_in_flight;
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, nc, &jo) == NATS_OK);
  std::string payload(48 + 64 * (21 + 100), 'x');
  const uint64_t msgs = n / 64;
  auto t1 = Clock::now();
  for (uint64_t i = 0; i < msgs; ++i) {
    natsMsg* m = nullptr;
    REQUIRE(natsMsg_Create(&m, "recmap.raw", nullptr, payload.data(),
                           static_cast<int>(payload.size())) == NATS_OK);
    std::string id = absl::StrCat("raw-", i);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    REQUIRE(js_PublishMsgAsync(js, &m, nullptr) == NATS_OK);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  REQUIRE(js_PublishAsyncComplete(js, &po) == NATS_OK);
  double raw_s = std::chrono::duration<double>(Clock::now() - t1).count();
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  RestoreOptions ro;
  ro.nats = so.nats;
  ro.store_uuid = UuidHex(store->info().uuid);
  RestoreStats st;
  Options ropt;
  auto t2 = Clock::now();
  REQUIRE(Restore(
              ro, t.File("r.rmap"), ropt, [] { return true; }, &st)
              .ok());
  double restore_s = std::chrono::duration<double>(Clock::now() - t2).count();
  REQUIRE(st.records == n);
  double ship_rate = n / ship_s, raw_rate = (msgs * 64) / raw_s;
  std::printf(
      "ship %.0f records/s, raw async publish %.0f records/s (%.0f%%), "
      "restore %.0f records/s\n",
      ship_rate, raw_rate, 100 * ship_rate / raw_rate, n / restore_s);
}

}  // namespace
}  // namespace recmap::testing
